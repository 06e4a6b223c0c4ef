"""Where the policy runs, on an arm: local, remote and real-time chunking side by side, in one run.

On the emulated SO-101 (`runner emulate`'s servo buses on real ptys, LeRobot's SO-101 follower class, two
emulated 128x96 cameras), blinded `runner eval` sessions scored from a pty (every trial `f` when its time is
up), 10 Hz control:
- ACT (tiny): eval.inference=local (the reference: LeRobot's SyncInferenceEngine) and remote (`runner serve`
  on loopback, LeRobot's default chunking);
- SmolVLA (tiny stand-in VLM, tests/tiny_vlm.py): local, remote and rtc (LeRobot's RTCInferenceEngine).
For each: the achieved control rate (the goal is the 10 Hz asked for), underruns per episode (steps that had
no action to send, or waited for one) and, remote, observation-to-action latency; from the runs' metrics.json.

Usage: .venv/bin/python benchmarks/bench_robot_inference.py [--episodes 3] [--episode-s 5]
"""

import argparse
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from timed_runner import REPO, RUNNER, run, serve

sys.path.insert(0, str(REPO / "tests"))
ROBOT = ["experiment=sim_demo", "robot=so101_follower", "teleop=so101_leader", "host=emulated", "cameras=wrist_side",
         "cameras.wrist.width=128", "cameras.wrist.height=96", "cameras.side.width=128", "cameras.side.height=96",
         "cameras.wrist.fourcc=null", "cameras.side.fourcc=null", "scene_check=off", "eval.videos=0",
         "eval.checkpoint=last"]  # fmt: skip
TINY_ACT = ["policy.dim_model=32", "policy.dim_feedforward=64", "policy.n_encoder_layers=1",
            "policy.n_vae_encoder_layers=1", "policy.chunk_size=10", "policy.n_action_steps=10"]  # fmt: skip


def _smolvla(vlm: Path) -> list[str]:
    return ["policy=smolvla", f"policy.vlm_path={vlm}", "policy.load_vlm_weights=false",
            "policy.resize_imgs_with_padding=[64,64]", "policy.chunk_size=10", "policy.n_action_steps=10",
            "policy.max_state_dim=8", "policy.max_action_dim=8", "policy.tokenizer_max_length=16",
            "policy.scheduler_warmup_steps=1", "policy.scheduler_decay_steps=10"]  # fmt: skip


def _session(env: dict, *overrides: str) -> None:
    """A blinded session on a terminal: space starts each trial, f scores it when its time is up."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [RUNNER, "eval", *ROBOT, *overrides], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**env, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    os.close(slave)
    output = []
    for line in process.stdout:
        output.append(line)
        if "space: start the episode" in line:
            os.write(master, b" ")
        elif "time is up" in line:
            os.write(master, b"f")
    os.close(master)
    if process.wait() != 0:
        raise SystemExit("runner eval failed:\n" + "".join(output)[-3000:])


def _latest(outputs: Path, stage: str) -> Path:
    return max((p for p in outputs.glob("*/*") if f"-{stage}-" in p.name), key=lambda p: p.name)


def main() -> None:
    from tiny_vlm import build_tiny_vlm

    from runner.commands.emulate import serve as emulated_arms

    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--episode-s", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1",
               "RUNNER_EMULATED_DIR": str(Path(tmp) / "emulated")}  # fmt: skip
        run(["record", "experiment=sim_demo", "episode.num_episodes=2", "episode.episode_time_s=3"], env)
        record = _latest(outputs, "record").name
        train = ["train", "experiment=sim_demo", f"dataset_run={record}", "train.batch_size=2", "train.num_workers=0"]
        run([*train, *TINY_ACT, "train.steps=4", "train.save_freq=4"], env)
        act = _latest(outputs, "train").name
        smolvla = _smolvla(build_tiny_vlm(Path(tmp) / "tiny-smolvlm"))
        run([*train, *smolvla, "train.steps=2", "train.save_freq=2"], env)
        vla = _latest(outputs, "train").name
        episode = [f"eval.n_episodes={args.episodes}", f"episode.episode_time_s={args.episode_s}"]
        cases = [("ACT", act, [], "local"), ("ACT", act, [], "remote"), ("SmolVLA", vla, smolvla, "local"),
                 ("SmolVLA", vla, smolvla, "remote"), ("SmolVLA", vla, smolvla, "rtc")]  # fmt: skip
        steps = round(args.episode_s * 10)
        print(f"emulated SO-101, 2 cameras 128x96, 10 Hz, {args.episodes} episodes x {steps} steps per session, "
              f"{os.cpu_count()} cores")  # fmt: skip
        with emulated_arms(Path(env["RUNNER_EMULATED_DIR"]), leader_moves=False):
            for name, policy_run, policy, inference in cases:
                server = None
                where = [f"eval.inference={inference}"]
                if inference == "remote":
                    server, address = serve(env, f"policy_run={policy_run}", *policy)
                    where.append(f"eval.server={address}")
                try:
                    _session(env, f"policy_run={policy_run}", *policy, *episode, *where)
                finally:
                    if server is not None:
                        server.send_signal(signal.SIGTERM)
                        server.wait(timeout=60)
                m = json.loads((_latest(outputs, "eval") / "eval" / "metrics.json").read_text())
                latency = (f" · obs->action p50 {m['latency_ms_p50']} ms p99 {m['latency_ms_p99']} ms"
                           if inference == "remote" else "")  # fmt: skip
                print(f"  {name:8s} {inference:7s} {m['control_hz']:6.2f} Hz of 10 · "
                      f"{m['underruns'] / args.episodes:5.1f} underruns/episode{latency}")  # fmt: skip
        shutil.rmtree(outputs, ignore_errors=True)


if __name__ == "__main__":
    main()
