"""Training figures: `runner train` against LeRobot's own `lerobot-train` CLI, same dataset and config.

1. Steps/s, runner vs lerobot-train, same run (goal >= 0.97x): the training-loop rate, measured as the
   marginal cost of extra steps ((T(long) - T(short)) / (long - short) steps, whole processes, so start-up
   cancels out), and the end-to-end rate of the long run (start-up included). Both on the CPU, the same
   dataset, policy sizes, batch and seed; --repeats interleaved rounds (the order alternates), medians.
2. Checkpoint size and save time per policy (ACT as sim_demo uses it, Diffusion at LeRobot's sizes).
3. Peak RAM (max RSS) of each training process, runner's and lerobot-train's (os.wait4: that child only).

Records a small sim_demo dataset first.
Usage: .venv/bin/python benchmarks/bench_train.py [--short 20] [--steps 80] [--episodes 3] [--repeats 3]
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
ACT_SMALL = {"chunk_size": 10, "n_action_steps": 10, "dim_model": 64, "dim_feedforward": 256,
             "n_encoder_layers": 1, "n_decoder_layers": 1, "n_vae_encoder_layers": 1}  # fmt: skip


def timed(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and the peak RSS (MB) of that child process alone (its own rusage, from os.wait4)."""
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{log.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
        subprocess.run(
            [str(BIN / "runner"), "record", "experiment=sim_demo", "episode.realtime=false",
             f"episode.num_episodes={args.episodes}"], env=env, check=True, capture_output=True,
        )  # fmt: skip
        [dataset] = outputs.rglob("dataset/meta/info.json")
        dataset = dataset.parent.parent
        common = ["experiment=sim_demo", "train.num_workers=0", "train.batch_size=8", "train.log_freq=10",
                  "train.device=cpu", "train.seed=1000"]  # fmt: skip

        def runner_train(steps: int) -> tuple[float, int]:
            return timed([str(BIN / "runner"), "train", *common, f"train.steps={steps}", f"train.save_freq={steps}"],
                         env)  # fmt: skip

        runs = itertools.count()  # lerobot-train refuses an output directory that exists

        def lerobot_train(steps: int) -> tuple[float, int]:
            command = [
                str(BIN / "lerobot-train"), "--dataset.repo_id=local/sim_demo", f"--dataset.root={dataset}",
                "--dataset.video_backend=pyav", "--policy.type=act", "--policy.device=cpu",
                "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null",
                *(f"--policy.{k}={v}" for k, v in ACT_SMALL.items()),
                f"--output_dir={Path(tmp) / f'lerobot-train-{steps}-{next(runs)}'}", "--num_workers=0",
                "--batch_size=8", "--log_freq=10", f"--steps={steps}", f"--save_freq={steps}", "--seed=1000",
            ]  # fmt: skip
            return timed(command, env)

        # Interleaved rounds, the order alternating, so machine-load drift hits both alike; medians over rounds.
        arms = {"runner": runner_train, "lerobot-train": lerobot_train}
        loop_rates, long_s, peaks = {a: [] for a in arms}, {a: [] for a in arms}, {a: [] for a in arms}
        for round_ in range(args.repeats):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
            short = {arm: arms[arm](args.short)[0] for arm in order}
            for arm in order:
                seconds, peak = arms[arm](args.steps)
                loop_rates[arm].append((args.steps - args.short) / (seconds - short[arm]))
                long_s[arm].append(seconds)
                peaks[arm].append(peak)
        rate = {arm: statistics.median(v) for arm, v in loop_rates.items()}
        wall = {arm: statistics.median(v) for arm, v in long_s.items()}
        spread = {arm: f"{min(v):.2f}-{max(v):.2f}" for arm, v in loop_rates.items()}
        print(f"training, ACT (sim_demo size) on {args.episodes} sim_demo episodes, batch 8, CPU, {args.steps} steps, "
              f"median of {args.repeats} interleaved rounds")  # fmt: skip
        print(f"  training loop      runner {rate['runner']:5.2f} steps/s ({spread['runner']}) · lerobot-train "
              f"{rate['lerobot-train']:5.2f} steps/s ({spread['lerobot-train']}) · "
              f"ratio {rate['runner'] / rate['lerobot-train']:4.2f} x (goal >= 0.97 x)")  # fmt: skip
        print(f"  end to end         runner {args.steps / wall['runner']:5.2f} steps/s ({wall['runner']:.1f} s) · "
              f"lerobot-train {args.steps / wall['lerobot-train']:5.2f} steps/s ({wall['lerobot-train']:.1f} s) · "
              f"ratio {wall['lerobot-train'] / wall['runner']:4.2f} x")  # fmt: skip
        print(f"  peak RAM of the training process: runner {max(peaks['runner'])} MB · "
              f"lerobot-train {max(peaks['lerobot-train'])} MB")  # fmt: skip
        diffusion_overrides = ["policy=diffusion", "train.steps=2", "train.save_freq=2"]
        subprocess.run([str(BIN / "runner"), "train", *common, *diffusion_overrides], env=env, check=True,
                       capture_output=True)  # fmt: skip
        print("checkpoints (model + optimizer + processors)")
        for run_json in sorted(outputs.rglob("run.json")):
            record = json.loads(run_json.read_text())
            if record["stage"] != "train" or not record.get("checkpoints"):
                continue
            config = (run_json.parent / ".hydra" / "config.yaml").read_text()
            policy = "diffusion" if "type: diffusion" in config else "act (sim_demo)"
            last = record["checkpoints"][-1]
            print(f"  {policy:<16} {last['size_mb']:8.1f} MB · saved in {last['save_s']:.2f} s")


if __name__ == "__main__":
    main()
