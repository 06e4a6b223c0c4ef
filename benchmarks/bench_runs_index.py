"""`runner runs --json` over a large synthetic outputs tree (goal: < 1 s for 10,000 runs).

Builds N run directories (a tenth of them inside sweeps) with realistic run.json files, then times the
whole command as a user runs it, and the index build alone in-process.
Usage: .venv/bin/python benchmarks/bench_runs_index.py [--runs 10000] [--repeat 5]
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from runner.core import outputs

REPO = Path(__file__).resolve().parent.parent


def build_tree(root: Path, n_runs: int) -> None:
    stages = ("record", "train", "eval")
    for i in range(n_runs):
        experiment = f"exp{i % 20}"
        stage = stages[i % 3]
        run_id = f"20261124-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}-{i % 1000:03d}-{stage}-{i:04x}"
        parent = root / experiment
        if i % 10 == 0:
            parent = parent / f"20261124-000000-000-eval-sweep-{i // 100:04x}"
        run_dir = parent / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "id": run_id,
            "stage": stage,
            "experiment": experiment,
            "status": "succeeded",
            "started_at": "2026-11-24T15:30:12.483+00:00",
            "ended_at": "2026-11-24T15:40:12.483+00:00",
            "argv": ["runner", stage, f"experiment={experiment}"],
            "overrides": [f"experiment={experiment}"],
            "git": {"commit": "0" * 40, "dirty": False, "diff_file": None},
            "packages": {"python": "3.12.1", "lerobot": "0.6.1", "torch": "2.11.0", "hydra-core": "1.3.8"},
            "host": {"hostname": "bench", "os": "Linux", "cpu": "x", "gpu": []},
            "parents": [],
            "sweep": None,
            "artifacts": [".hydra/config.yaml", "run.log"],
            "error": None,
        }
        (run_dir / "run.json").write_text(json.dumps(record, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_tree(root, args.runs)
        command = [str(REPO / ".venv" / "bin" / "runner"), "runs", "--json", "--outputs", str(root)]
        wall, index = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            wall.append(time.perf_counter() - start)
            start = time.perf_counter()
            runs = outputs.list_runs(root)
            index.append(time.perf_counter() - start)
        listed = len(json.loads(result.stdout))
    assert listed == args.runs == len(runs), f"listed {listed} of {args.runs}"
    print(f"runs index over {args.runs} run directories, median of {args.repeat}")
    print(f"  runner runs --json (whole command)  {statistics.median(wall):6.3f} s   (goal < 1 s)")
    print(f"  index build in-process              {statistics.median(index):6.3f} s")


if __name__ == "__main__":
    main()
