"""What a sweep's jobs share across processes: its environment variables, and which of its jobs are done.

Kept apart from ``runner.app`` because runner's Hydra sweeper (``hydra_plugins/runner_sweeper``) reads it in
the submitting process, before any stage is loaded.
"""

from __future__ import annotations

import logging
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


# sacct's answer on a cluster without accounting (AccountingStorageType=accounting_storage/none).
NO_ACCOUNTING = "accounting storage is disabled"


def watch_slurm_without_accounting() -> None:
    """Let submitit follow SLURM jobs on a cluster without accounting, where every sacct call fails.

    submitit learns a job's state only from sacct. Without it a job that ends without a result (scancel, a
    node lost, the OOM killer) is never seen to end, and the sweep waits forever; and each poll prints
    sacct's error and submitit's warning (twice) to the console. From the first such failure on, this
    asks squeue instead (it keeps finished jobs for the cluster's MinJobAge, 300 s by default) and says so
    once.
    """
    import subprocess
    import time

    from submitit.slurm import slurm

    watcher = slurm.SlurmInfoWatcher
    if getattr(watcher, "runner_without_accounting", None) is not None:
        return
    log = logging.getLogger(__name__)

    def update(self: slurm.SlurmInfoWatcher) -> None:
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        if not watcher.runner_without_accounting:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 and NO_ACCOUNTING in done.stderr:
                watcher.runner_without_accounting = True
                log.warning("this SLURM cluster has no accounting (sacct: %s): job states come from squeue",
                            done.stderr.strip())  # fmt: skip
        if watcher.runner_without_accounting:
            jobs = ",".join(command[i + 1] for i, arg in enumerate(command) if arg == "-j")
            squeue = ["squeue", "--states=all", "--noheader", "--array", "--format=%i|%T|%N", f"--jobs={jobs}"]
            done = subprocess.run(squeue, capture_output=True, text=True, check=False)
            output = "JobID|State|NodeList\n" + done.stdout  # sacct's --parsable2 layout, which read_info takes
        else:
            output = done.stdout
        if done.returncode == 0:
            self._info_dict.update(self.read_info(output))
        elif watcher.runner_without_accounting:  # a job purged after MinJobAge: its result file still ends it
            log.debug("call #%d - squeue failed: %s", self.num_calls, done.stderr.strip())
        else:
            log.warning("call #%d - sacct failed, job states may be stale: %s", self.num_calls, done.stderr.strip())
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    watcher.runner_without_accounting = False
    watcher.update = update
