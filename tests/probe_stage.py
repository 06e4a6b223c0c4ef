"""A tiny stage that lives in the tests, to exercise the stage machinery without LeRobot.

Run as a script: ``python tests/probe_stage.py [overrides]`` behaves like ``runner probe ...``.
"""

import sys
import time

from omegaconf import DictConfig

from runner.core.command_line import run_stage_cli
from runner.core.context import StageContext
from runner.core.stage import Stage

PROBE = Stage(
    name="probe",
    summary="a test stage: sleeps, writes an artefact, can fail",
    entry="probe_stage:probe",
    uses=("task", "episode", "paths"),
)


def probe(cfg: DictConfig, ctx: StageContext) -> None:
    run = ctx.start_run(parents=[])
    (run.dir / "probe.txt").write_text(cfg.task.instruction)
    run.add_artifact("probe.txt")
    deadline = time.monotonic() + cfg.episode.reset_time_s
    print(f"probe started {run.id}", flush=True)
    while time.monotonic() < deadline:
        time.sleep(0.02)
    if cfg.task.name == "explode":
        raise RuntimeError("the probe was asked to fail")


if __name__ == "__main__":
    sys.exit(run_stage_cli(PROBE, sys.argv[1:]))
