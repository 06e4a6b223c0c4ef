"""Training figures: `runner train` against LeRobot's own `lerobot-train` CLI, same dataset and config.

1. Steps/s, runner vs lerobot-train, same run (goal >= 0.97x): the training-loop rate, measured as the
   marginal cost of extra steps ((T(long) - T(short)) / (long - short) steps, whole processes, so start-up
   cancels out), and the end-to-end rate of the long run (start-up included).
2. Checkpoint size and save time per policy (ACT as sim_demo uses it, Diffusion at LeRobot's sizes).
3. Peak RAM (max RSS) of `runner train` with ACT on the sim_demo dataset.

Records a small sim_demo dataset first (or reuses --dataset-run from RUNNER_OUTPUTS).
Usage: .venv/bin/python benchmarks/bench_train.py [--short 20] [--steps 80] [--episodes 3]
"""

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
ACT_SMALL = {"chunk_size": 10, "n_action_steps": 10, "dim_model": 64, "dim_feedforward": 256,
             "n_encoder_layers": 1, "n_decoder_layers": 1, "n_vae_encoder_layers": 1}  # fmt: skip


def timed(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and the peak RSS (MB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--episodes", type=int, default=3)
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
        common = ["experiment=sim_demo", "train.num_workers=0", "train.batch_size=8", "train.log_freq=10"]

        def runner_train(steps: int) -> tuple[float, int]:
            return timed([str(BIN / "runner"), "train", *common, f"train.steps={steps}", f"train.save_freq={steps}"],
                         env)  # fmt: skip

        def lerobot_train(steps: int) -> tuple[float, int]:
            command = [
                str(BIN / "lerobot-train"), "--dataset.repo_id=local/sim_demo", f"--dataset.root={dataset}",
                "--dataset.video_backend=pyav", "--policy.type=act", "--policy.device=cpu",
                "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null",
                *(f"--policy.{k}={v}" for k, v in ACT_SMALL.items()),
                f"--output_dir={Path(tmp) / f'lerobot-train-{steps}'}", "--num_workers=0", "--batch_size=8",
                "--log_freq=10", f"--steps={steps}", f"--save_freq={steps}", "--seed=1000",
            ]  # fmt: skip
            return timed(command, env)

        # Interleaved, so machine-load drift hits both alike.
        runner_short, _ = runner_train(args.short)
        lerobot_short, _ = lerobot_train(args.short)
        runner_long, runner_peak = runner_train(args.steps)
        lerobot_long, _ = lerobot_train(args.steps)
        extra = args.steps - args.short
        runner_rate, lerobot_rate = extra / (runner_long - runner_short), extra / (lerobot_long - lerobot_short)
        print(f"training, ACT (sim_demo size) on {args.episodes} sim_demo episodes, batch 8, CPU, {args.steps} steps")
        print(f"  training loop      runner {runner_rate:5.2f} steps/s · lerobot-train {lerobot_rate:5.2f} steps/s · "
              f"ratio {runner_rate / lerobot_rate:4.2f} x (goal >= 0.97 x)")  # fmt: skip
        print(f"  end to end         runner {args.steps / runner_long:5.2f} steps/s ({runner_long:.1f} s) · "
              f"lerobot-train {args.steps / lerobot_long:5.2f} steps/s ({lerobot_long:.1f} s) · "
              f"ratio {lerobot_long / runner_long:4.2f} x")  # fmt: skip
        print(f"  peak RAM of runner train: {runner_peak} MB")
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
