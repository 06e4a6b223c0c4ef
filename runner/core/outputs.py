"""The versioned outputs tree: run ids, never-reused run directories, run.json, the run index.

Layout (see outputs/README.md)::

    <root>/<experiment>/<run-id>/                single runs
    <root>/<experiment>/<sweep-id>/<run-id>/     the jobs of one multirun sweep (sweep.json beside them)

A run id sorts by start time (UTC): ``20261124-153012-483-record-7f3a``. The index is rebuilt from the
run.json files on every call; there is no database to get out of step with the files.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from runner.core import layout

# The folder under the outputs root of a run made without `experiment=`.
DEFAULT_EXPERIMENT = "default"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_outputs_root() -> Path:
    """``RUNNER_OUTPUTS`` if set, else ``outputs/`` at the repo root (the same from any working directory)."""
    env = os.environ.get("RUNNER_OUTPUTS")
    return Path(env).expanduser().resolve() if env else repo_root() / "outputs"


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def new_id(kind: str) -> str:
    """A time-sortable id; the random suffix keeps ids apart across processes and machines."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{kind}-{secrets.token_hex(2)}"


def create_unique_dir(parent: Path, kind: str) -> tuple[str, Path]:
    """Create ``parent/<new id>`` with an exclusive mkdir, retrying on the (rare) collision."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_id(kind)
        path = parent / run_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return run_id, path


def _replace_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write through ``write`` so that readers only ever see the old file or the complete new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    def write(f: TextIO) -> None:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")

    _replace_atomically(path, write)


def write_text_atomic(path: Path, text: str) -> None:
    _replace_atomically(path, lambda f: f.write(text))


def write_csv_atomic(path: Path, fieldnames: list[str], rows: list[dict]) -> None:
    def write(f: TextIO) -> None:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)

    _replace_atomically(path, write)


# --- reading the tree --------------------------------------------------------------------------------


@dataclass
class Recorded:
    """A folder described by a JSON record (run.json, sweep.json), as the index reads it."""

    record: dict[str, Any]
    # A plain string: building 10,000 Path objects is a third of the time `runner runs` takes.
    location: str

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def id(self) -> str:
        return self.record.get("id") or os.path.basename(self.location)


@dataclass
class RunInfo(Recorded):
    """One run: its run.json plus where it lives."""

    @property
    def stage(self) -> str:
        return self.record.get("stage", "?")

    @property
    def experiment(self) -> str:
        return self.record.get("experiment", "?")

    @property
    def status(self) -> str:
        status = self.record.get("status", "?")
        if status == "running" and not _process_alive(self.record):
            return "stale"
        return status

    @property
    def started_at(self) -> str:
        return self.record.get("started_at", "")

    @property
    def duration_s(self) -> float | None:
        start, end = self.record.get("started_at"), self.record.get("ended_at")
        if not start:
            return None
        begin = datetime.fromisoformat(start)
        finish = datetime.fromisoformat(end) if end else None
        if finish is None:
            if self.status != "running":
                return None
            finish = datetime.now(UTC)
        return (finish - begin).total_seconds()

    def summary(self) -> dict[str, Any]:
        sweep = self.record.get("sweep") or {}
        return {
            "id": self.id,
            "stage": self.stage,
            "experiment": self.experiment,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.record.get("ended_at"),
            "duration_s": self.duration_s,
            "parents": self.record.get("parents", []),
            "sweep": sweep.get("id"),
            "job": sweep.get("job"),
            "path": self.location,
        }


def _process_alive(record: dict[str, Any]) -> bool:
    """Whether the process that wrote a ``running`` record still runs (unknowable on another host)."""
    process = record.get("process") or {}
    pid = process.get("pid")
    if not pid or process.get("hostname") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        import psutil

        # A reused pid belongs to a process created after our run started.
        return psutil.Process(pid).create_time() <= process.get("created", float("inf")) + 1
    except (ImportError, psutil.Error):
        return True


def _read_run(directory: str) -> RunInfo | None:
    try:
        with open(os.path.join(directory, layout.RUN_JSON), "rb") as f:
            record = json.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return RunInfo(record, directory)


def iter_runs(root: Path) -> Iterator[RunInfo]:
    """Every run under ``root``: ``<experiment>/<run>`` and ``<experiment>/<sweep>/<run>``."""
    try:
        experiments = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return
    for experiment in experiments:
        for entry in os.scandir(experiment.path):
            if not entry.is_dir():
                continue
            run = _read_run(entry.path)
            if run is not None:
                yield run
            else:  # a sweep: its jobs are one level down
                for job in os.scandir(entry.path):
                    if job.is_dir() and (run := _read_run(job.path)) is not None:
                        yield run


def list_runs(root: Path) -> list[RunInfo]:
    """All runs, newest first (ids sort by start time)."""
    return sorted(iter_runs(root), key=lambda r: r.id, reverse=True)


class RunReferenceError(LookupError):
    """A run reference that matches no run, or more than one."""


def resolve_run(root: Path, ref: str, stage: str | tuple[str, ...] | None = None) -> RunInfo:
    """Find a run by full id, unique id prefix, ``latest`` or ``latest:<stage>``.

    ``stage`` (one, or a tuple of stages) restricts every form to runs of those stages (e.g. a train stage
    asking for a record or dataset run).
    """
    stages = (stage,) if isinstance(stage, str) else stage
    runs = list_runs(root)
    if ref == "latest" or ref.startswith("latest:"):
        named = ref.partition(":")[2]
        wanted = (named,) if named else stages
        matches = [r for r in runs if wanted is None or r.stage in wanted]
        if not matches:
            kind = f"{' or '.join(wanted)} run" if wanted else "run"
            raise RunReferenceError(f"'{ref}': there is no {kind} under {root}. Run `runner runs` to see what exists.")
        return matches[0]
    candidates = [r for r in runs if stages is None or r.stage in stages]
    exact = [r for r in candidates if r.id == ref]
    if exact:
        return exact[0]
    prefixed = [r for r in candidates if r.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    what = f"{' or '.join(stages)} run" if stages else "run"
    if prefixed:
        listed = ", ".join(r.id for r in prefixed[:5])
        raise RunReferenceError(f"'{ref}' matches {len(prefixed)} {what}s ({listed}); give more of the id.")
    nearest = difflib.get_close_matches(ref, [r.id for r in candidates], n=3, cutoff=0.3)
    hint = f" Nearest: {', '.join(nearest)}." if nearest else ""
    raise RunReferenceError(f"'{ref}' matches no {what} under {root}.{hint} Run `runner runs` to list runs.")


class SweepInfo(Recorded):
    """One sweep: its sweep.json and the runs of its jobs."""

    def runs(self) -> list[RunInfo]:
        """The job runs, oldest first (a resumed sweep has a failed run and its retry for one job)."""
        found = [run for entry in os.scandir(self.location) if entry.is_dir() and (run := _read_run(entry.path))]
        return sorted(found, key=lambda r: r.id)


def list_sweeps(root: Path) -> list[SweepInfo]:
    """Every sweep under ``root``, newest first."""
    sweeps = []
    try:
        experiments = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    for experiment in experiments:
        for entry in os.scandir(experiment.path):
            try:
                with open(os.path.join(entry.path, layout.SWEEP_JSON), "rb") as f:
                    sweeps.append(SweepInfo(json.loads(f.read()), entry.path))
            except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
                continue
    return sorted(sweeps, key=lambda s: s.record.get("started_at", ""), reverse=True)


def resolve_sweep(root: Path, ref: str) -> SweepInfo:
    """A sweep by id, unique id prefix, ``latest`` or ``latest-sweep``."""
    sweeps = list_sweeps(root)
    if ref in ("latest", "latest-sweep"):
        if not sweeps:
            raise RunReferenceError(f"'{ref}': there is no sweep under {root}. Sweeps are made with `-m`.")
        return sweeps[0]
    exact = [s for s in sweeps if s.id == ref]
    prefixed = exact or [s for s in sweeps if s.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise RunReferenceError(f"'{ref}' matches {len(prefixed)} sweeps; give more of the id.")
    nearest = difflib.get_close_matches(ref, [s.id for s in sweeps], n=3, cutoff=0.3)
    hint = f" Nearest: {', '.join(nearest)}." if nearest else ""
    raise RunReferenceError(f"'{ref}' matches no sweep under {root}.{hint} Run `runner runs` to list runs.")
