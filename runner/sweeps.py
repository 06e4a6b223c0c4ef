"""What a sweep's jobs share across processes: its environment variables, and which of its jobs are done.

Kept apart from ``runner.app`` because runner's Hydra sweeper (``hydra_plugins/runner_sweeper``) reads it in
the submitting process, before any stage is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runner import outputs
from runner.redact import Redactor

SWEEP_ID_ENV = "RUNNER_SWEEP_ID"
# Set once the sweep directory exists, so that every job (even one sweeping `experiment=`) lands in it.
SWEEP_DIR_ENV = "RUNNER_SWEEP_DIR"
# Set by `sweep.resume=`: the jobs of the sweep that already succeeded are not launched again.
SWEEP_RESUME_ENV = "RUNNER_SWEEP_RESUME"


def job_key(number: int, overrides: Iterable[str]) -> tuple[Any, ...]:
    """A job's identity within its sweep: its number and its overrides as run.json records them (secrets
    redacted); both, since a sweep may list the same value twice."""
    redactor = Redactor()
    return number, *sorted(redactor.override(o) for o in overrides if not o.startswith("sweep.resume="))


def succeeded_job_keys(sweep_dir: str | Path) -> set[tuple[Any, ...]]:
    sweep = outputs.SweepInfo({}, str(sweep_dir))
    return {
        job_key(run.record["sweep"]["job"], run.record.get("overrides", []))
        for run in sweep.runs()
        if run.status == "succeeded" and run.record.get("sweep")
    }


def launcher_identity() -> dict[str, Any] | None:
    """The scheduler job this process is, when a submitit launcher started it (local processes or SLURM).

    Log paths are relative to the run directory (which sits in the sweep directory, beside ``.submitit/``),
    so a run copied between machines with its sweep keeps pointing at its logs.
    """
    executor = os.environ.get("SUBMITIT_EXECUTOR")
    if not executor:
        return None
    import submitit

    environment = submitit.JobEnvironment()
    sweep_dir = Path(os.environ.get(SWEEP_DIR_ENV, environment.paths.folder))

    def relative(path: Path) -> str:
        try:
            return str(Path("..") / Path(path).resolve().relative_to(sweep_dir.resolve()))
        except ValueError:
            return str(path)

    identity = {
        "name": f"submitit_{executor}",
        "job_id": environment.job_id,
        "stdout": relative(environment.paths.stdout),
        "stderr": relative(environment.paths.stderr),
        "hostname": environment.hostname,
    }
    if executor == "slurm":
        identity |= {
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
            "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "partition": os.environ.get("SLURM_JOB_PARTITION"),
        }
    return identity
