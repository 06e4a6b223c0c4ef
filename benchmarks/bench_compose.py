"""Hydra compositions and CPU time per run and per sweep: runner's command line against Hydra's own flow.

Hydra composes a run's whole config twice (once only to read ``hydra.mode``), and each job of a sweep once to
check its batch and once to launch it; runner's sweeper composes each job once more to check it before the sweep
starts. runner reads the mode from -m (one composition per run) and hands the in-process launcher the configs it
checked (one per job). The reference is the same runner code with Hydra's flow put back, in the same process,
interleaved; the work is the test suite's probe stage (a real stage: run directory, run.json, logs; nothing else).
Compositions are counted at Hydra's config loader; CPU is this process's, median of the repeats.
Usage: .venv/bin/python benchmarks/bench_compose.py [--jobs 4] [--repeat 5]
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


@contextlib.contextmanager
def hydras_own_flow():
    """runner as it was before it read the mode from -m and reused the checked job configs."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from hydra_plugins.runner_sweeper import runner_sweeper
    from runner.core import command_line

    saved = (command_line._mode_from_the_command_line, runner_sweeper.RunnerSweeper.validate_batch_is_legal,
             runner_sweeper._ComposedOnce.load_sweep_config)  # fmt: skip
    command_line._mode_from_the_command_line = lambda multirun: contextlib.nullcontext()
    runner_sweeper.RunnerSweeper.validate_batch_is_legal = BasicSweeper.validate_batch_is_legal
    runner_sweeper._ComposedOnce.load_sweep_config = lambda self, master, overrides: self._loader.load_sweep_config(
        master, overrides
    )
    try:
        yield
    finally:
        (command_line._mode_from_the_command_line, runner_sweeper.RunnerSweeper.validate_batch_is_legal,
         runner_sweeper._ComposedOnce.load_sweep_config) = saved  # fmt: skip


class Compositions:
    """Counts Hydra's compositions of a whole config (a run's, a sweep's, or one job's)."""

    def __init__(self) -> None:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        self.count = 0
        original = ConfigLoaderImpl._load_configuration_impl

        def counted(loader, *args, **kwargs):
            self.count += 1
            return original(loader, *args, **kwargs)

        ConfigLoaderImpl._load_configuration_impl = counted


def measure(args: list[str], compositions: Compositions) -> tuple[float, int]:
    """(CPU seconds, compositions) of one ``runner probe ARGS`` in this process."""
    from probe_stage import PROBE

    from runner.core.command_line import run_stage_cli

    before, start = compositions.count, time.process_time()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        code = run_stage_cli(PROBE, args)
    if code != 0:
        raise SystemExit(f"runner probe {' '.join(args)} exited {code}")
    return time.process_time() - start, compositions.count - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    compositions = Compositions()
    commands = {
        "a run": ["episode.reset_time_s=0"],
        f"a sweep of {args.jobs} jobs (basic launcher)": [
            "-m", "episode.reset_time_s=0", "task.instruction=" + ",".join(f"job{i}" for i in range(args.jobs))
        ],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as outputs:
        os.environ["RUNNER_OUTPUTS"] = outputs
        measure(commands["a run"], compositions)  # imports and Hydra's plugin discovery, once
        cpu: dict[tuple[str, str], list[float]] = {}
        counts: dict[tuple[str, str], int] = {}
        for _ in range(args.repeat):
            for name, command in commands.items():
                for flow in ("runner", "Hydra's flow"):
                    with hydras_own_flow() if flow == "Hydra's flow" else contextlib.nullcontext():
                        seconds, count = measure(command, compositions)
                    cpu.setdefault((name, flow), []).append(seconds)
                    counts[(name, flow)] = count
    print(f"Hydra compositions and CPU in one process (probe stage, median of {args.repeat}):")
    hydra = "Hydra's flow"
    for name in commands:
        ours, theirs = statistics.median(cpu[(name, "runner")]), statistics.median(cpu[(name, hydra)])
        print(f"  {name:<34} runner {counts[(name, 'runner')]:2d} compositions {ours * 1000:6.0f} ms · {hydra} "
              f"{counts[(name, hydra)]:2d} compositions {theirs * 1000:6.0f} ms · {theirs / ours:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
