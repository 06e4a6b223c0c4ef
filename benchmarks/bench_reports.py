"""Report generation time: `runner report dataset` on a 50-episode recording, and `runner report experiment`
on an experiment of 20 runs (1 record, 1 train with 4 checkpoints, 3 eval sweeps of 4 jobs, 3 comparisons,
2 dataset reports). Whole commands, as a user types them, start-up included.

Usage: .venv/bin/python benchmarks/bench_reports.py [--episodes 50]
"""

import argparse
import os
import tempfile
from pathlib import Path

from timed_runner import run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
        run(["record", "experiment=sim_demo", f"episode.num_episodes={args.episodes}", "episode.episode_time_s=3",
             "episode.early_stop.idle_s=null"], env)  # fmt: skip
        dataset = min(run(["report", "dataset", "latest"], env) for _ in range(2))
        run(["train", "experiment=sim_demo", "train.steps=8", "train.save_freq=2", "train.num_workers=0",
             "train.log_freq=2"], env)  # fmt: skip
        for _ in range(3):
            run(["eval", "experiment=sim_demo", "eval.n_episodes=1", "episode.episode_time_s=0.5", "eval.videos=0",
                 "hydra/launcher=joblib"], env)  # fmt: skip
            run(["compare", "latest-sweep"], env)
        runs = sum(1 for _ in (outputs / "sim_demo").rglob("run.json"))
        experiment = min(run(["report", "experiment", "sim_demo"], env) for _ in range(2))
        print(f"runner report dataset, {args.episodes}-episode sim recording (2 cameras 128x96, 3 s episodes): "
              f"{dataset:.1f} s (best of 2, whole command)")  # fmt: skip
        print(f"runner report experiment, {runs} runs before the report: {experiment:.1f} s (best of 2)")


if __name__ == "__main__":
    main()
