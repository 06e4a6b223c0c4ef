"""Startup time of the CLI against a bare Hydra app that composes the same config files.

Prints the median of N interleaved runs of each command and its ratio to the bare app (goal: <= 1.3x).
Usage: .venv/bin/python benchmarks/bench_startup.py [--repeat 9]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BARE_APP = """
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    pass

if __name__ == "__main__":
    main()
"""


def bare_app(workdir: Path) -> Path:
    """A plain Hydra app over a copy of conf/ (same files) without schemas, resolvers or callbacks."""
    conf = workdir / "conf"
    shutil.copytree(REPO / "conf", conf, symlinks=False)
    for path in conf.rglob("*.yaml"):
        kept = [line for line in path.read_text().splitlines() if "/schema/" not in line]
        path.write_text("\n".join(kept).replace("${runner_outputs:}", "outputs") + "\n")
    config = conf / "config.yaml"
    head = config.read_text().split("\nhydra:")[0].replace("  - runner_schema\n", "")
    config.write_text(head + "\nhydra:\n  output_subdir: null\n  run:\n    dir: .\n")
    app = workdir / "bare_app.py"
    app.write_text(BARE_APP)
    return app


def medians(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, float]:
    """Median wall time per command, interleaving the commands so machine-load drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (command, cwd) in commands.items():
            start = time.perf_counter()
            result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            if result.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    runner = [str(REPO / ".venv" / "bin" / "runner")]
    sys.path.insert(0, str(REPO / "tests"))
    from probe_stage import PROBE

    from runner.cli import STAGES

    stage = next(iter(STAGES), None)
    # The tests' probe stage stands in until the CLI has a real stage.
    stage_command = [*runner, stage] if stage else [sys.executable, str(REPO / "tests" / "probe_stage.py")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        app = bare_app(workdir)
        n_files = len(list((workdir / "conf").rglob("*.yaml")))
        results = medians(
            {
                "bare hydra app --cfg job": ([sys.executable, str(app), "--cfg", "job"], workdir),
                "runner --help": ([*runner, "--help"], REPO),
                f"runner {stage or PROBE.name} --cfg job": ([*stage_command, "--cfg", "job"], REPO),
                "runner runs (empty root)": ([*runner, "runs", "--outputs", tmp], REPO),
            },
            args.repeat,
        )
    bare = results["bare hydra app --cfg job"]
    print(f"startup, median of {args.repeat} interleaved runs, {n_files} config files composed")
    for name, seconds in results.items():
        print(f"  {name:<32} {seconds * 1000:7.0f} ms   {seconds / bare:5.2f} x bare   (goal <= 1.30 x)")


if __name__ == "__main__":
    main()
