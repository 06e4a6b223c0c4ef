"""What a sweep's jobs share across processes: its environment variables, and which of its jobs are done.

Also the sweep's own record (sweep.json) and the Hydra callback that keeps it. Light on imports: runner's
Hydra sweeper (``hydra_plugins/runner_sweeper``) reads it in the submitting process, before any stage is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from runner.core import layout, outputs
from runner.core.provenance import PIPELINE_ENV
from runner.core.redact import Redactor, secret_values_in

SWEEP_ID_ENV = "RUNNER_SWEEP_ID"
# Set once the sweep directory exists, so that every job (even one sweeping `experiment=`) lands in it.
SWEEP_DIR_ENV = "RUNNER_SWEEP_DIR"
# Set by `sweep.resume=`: the jobs of the sweep that already succeeded are not launched again.
SWEEP_RESUME_ENV = "RUNNER_SWEEP_RESUME"
# The stage a sweep runs, for its sweep.json (set by the command line before Hydra starts).
STAGE_ENV = "RUNNER_STAGE"


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


class SweepCallback(Callback):
    """Hydra callback: each sweep gets its own directory, created exclusively, with a sweep.json."""

    def __init__(self) -> None:
        self._sweep_file: Path | None = None

    def on_multirun_start(self, config: DictConfig, **_: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._sweep_file = sweep_dir / layout.SWEEP_JSON
        redactor = Redactor()
        if os.environ.get(SWEEP_RESUME_ENV):
            record = json.loads(self._sweep_file.read_text())
            record.setdefault("resumes", []).append(
                {"at": outputs.now_iso(), "argv": [redactor.override(a) for a in sys.argv]}
            )
            record["ended_at"] = None
            outputs.write_json_atomic(self._sweep_file, record)
        # A new sweep's directory is made by runner's sweeper, once every job has passed its checks.

    def on_job_start(self, config: DictConfig, **_: Any) -> None:
        """Hydra saved the sweep's composed config as multirun.yaml, secrets and all: rewrite it redacted."""
        if str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        saved = Path(config.hydra.sweep.dir) / "multirun.yaml"
        if not saved.exists():
            return
        data = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
        redactor = Redactor(secret_values_in(data))
        clean = OmegaConf.to_yaml(OmegaConf.create(redactor.data(data)))
        temporary = saved.with_name(f".multirun.yaml.{os.getpid()}")
        temporary.write_text(clean)
        os.replace(temporary, saved)

    def on_multirun_end(self, config: DictConfig, **_: Any) -> None:
        if self._sweep_file is not None:
            end_sweep(self._sweep_file)


def begin_sweep(config: DictConfig) -> None:
    """Create a new sweep's directory (exclusively: a sweep id is never reused) and its sweep.json."""
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_dir.mkdir()
    os.environ[SWEEP_DIR_ENV] = str(sweep_dir)
    experiment = config.hydra.runtime.choices.get("experiment") or outputs.DEFAULT_EXPERIMENT
    record = sweep_record(sweep_dir.name, os.environ.get(STAGE_ENV), experiment, sys.argv[1:], sys.argv,
                           OmegaConf.to_container(config.hydra.overrides.task, resolve=False),
                           Redactor())  # fmt: skip
    outputs.write_json_atomic(sweep_dir / layout.SWEEP_JSON, record)


def sweep_record(
    sweep_id: str,
    stage: str | None,
    experiment: str,
    args: Sequence[str],
    argv: Sequence[str],
    overrides: Sequence[str],
    redactor: Redactor,
) -> dict[str, Any]:
    """A new sweep.json: ``args`` are the stage's arguments, ``argv`` the whole command line; secrets redacted."""
    return {
        "id": sweep_id,
        "stage": stage,
        "experiment": experiment,
        "pipeline": os.environ.get(PIPELINE_ENV),
        # What `sweep.resume=` replays: the stage's arguments, sweeps already expanded.
        "args": [redactor.override(a) for a in args],
        "argv": [redactor.override(a) for a in argv],
        "overrides": [redactor.override(o) for o in overrides],
        "started_at": outputs.now_iso(),
        "ended_at": None,
    }


def end_sweep(sweep_file: Path) -> None:
    record = json.loads(sweep_file.read_text())
    record["ended_at"] = outputs.now_iso()
    outputs.write_json_atomic(sweep_file, record)
