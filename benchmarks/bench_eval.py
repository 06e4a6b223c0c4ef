"""Evaluation figures: a 4-checkpoint eval sweep with Hydra's joblib launcher vs the basic (sequential) one.

1. Wall time of `runner eval -m eval.checkpoint=all` over 4 checkpoints, basic launcher vs
   hydra/launcher=joblib (2 jobs at a time on 2 cores, 1 torch thread each), same run; goal >= 1.7x.
2. Eval episodes/s for ACT (act_small, sim_demo cameras: wrist + side 128x96) in the sim, one process:
   the rollout rate inside a job (rendering, physics and policy), from the jobs' metrics.json.

Records a small sim_demo dataset and trains act_small for a few steps first (an untrained policy runs every
episode to its cap, so the figures are for full-length episodes).
Usage: .venv/bin/python benchmarks/bench_eval.py [--episodes 4] [--episode-s 5]
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from timed_runner import run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--episode-s", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
        run(["record", "experiment=sim_demo", "episode.num_episodes=2"], env)
        run(["train", "experiment=sim_demo", "train.steps=8", "train.save_freq=2", "train.num_workers=0"], env)
        sweep = ["eval", "experiment=sim_demo", f"eval.n_episodes={args.episodes}", "eval.seeds=null",
                 f"episode.episode_time_s={args.episode_s}", "eval.videos=0"]  # fmt: skip
        sequential = run([*sweep, "hydra/launcher=basic"], env)
        # Jobs of the sequential sweep ran alone on the machine: their rate is the single-process rate.
        rates = [json.loads(p.read_text())["episodes_per_s"] for p in outputs.rglob("eval/metrics.json")]
        parallel = run([*sweep, "hydra/launcher=joblib"], env)
        steps = args.episode_s * 10
        print(f"4-checkpoint eval sweep, {args.episodes} episodes x {steps:.0f} steps each, {os.cpu_count()} cores:")
        print(f"  basic launcher (sequential): {sequential:6.1f} s")
        print(f"  joblib launcher (parallel):  {parallel:6.1f} s")
        print(f"  speed-up: {sequential / parallel:.2f}x (goal >= 1.7x)")
        rates.sort()
        median = rates[len(rates) // 2]
        print(
            f"ACT eval rate of a job alone: median {median:.3f} episodes/s ({median * steps:.1f} steps/s), "
            f"range {rates[0]:.3f}-{rates[-1]:.3f} over {len(rates)} jobs"
        )


if __name__ == "__main__":
    main()
