"""Per-job cost of the submitit_local launcher against Hydra's basic launcher, in the same run.

Each sweep runs N jobs of the test suite's probe stage (a real runner stage: run dir, run.json, logs) that do
nothing else, so the times are launcher overhead: the basic launcher runs the jobs one after the other in
this process; submitit_local pickles each job, starts a Python process per job and collects its result.
Usage: .venv/bin/python benchmarks/bench_launchers.py [--jobs 4] [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = REPO / "tests" / "probe_stage.py"


def sweep_seconds(launcher: str, jobs: int, outputs: Path) -> float:
    values = ",".join(f"job{i}" for i in range(jobs))
    command = [sys.executable, str(PROBE), "-m", f"hydra/launcher={launcher}", "episode.reset_time_s=0",
               f"task.instruction={values}"]  # fmt: skip
    env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "PYTHONPATH": str(REPO / "tests")}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"basic": [], "submitit_local": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeat):  # interleaved, so that load drift hits both alike
            for launcher in times:
                times[launcher].append(sweep_seconds(launcher, args.jobs, Path(scratch)))
    basic, submitit = (statistics.median(times[name]) for name in ("basic", "submitit_local"))
    print(f"sweep of {args.jobs} probe jobs, median of {args.repeat} ({os.cpu_count()} CPUs):")
    print(f"  basic launcher (in-process, sequential): {basic:6.2f} s  = {basic / args.jobs:5.2f} s/job")
    print(f"  submitit_local (a process per job):      {submitit:6.2f} s  = {submitit / args.jobs:5.2f} s/job")
    print(f"  submitit_local overhead: {(submitit - basic) / args.jobs:+.2f} s/job ({submitit / basic:.2f}x)")


if __name__ == "__main__":
    main()
