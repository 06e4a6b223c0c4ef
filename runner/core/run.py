"""One run's record from its start to its end, shared by stages (through ``StageContext``) and by utility
commands (``utility_run``): run.json kept whole at every update, run.log, and one way to end it: succeeded,
failed with its error (the traceback in run.log), or interrupted."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core import layout, outputs, provenance
from runner.core.redact import RedactingFormatter, Redactor

log = logging.getLogger("runner")


class _RunLogHandler(logging.FileHandler):
    """run.log. A line that cannot be written (a full disk) is reported once on the console, not as one
    traceback per log line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"runner: could not write {self.baseFilename} ({sys.exc_info()[1]}); "
                  "the log goes on on the console only", file=sys.stderr)  # fmt: skip


@dataclass
class Run:
    """One run directory and its run.json, kept up to date as the stage goes."""

    id: str
    dir: Path
    record: dict[str, Any]
    redactor: Redactor

    def save(self) -> None:
        outputs.write_json_atomic(self.dir / layout.RUN_JSON, self.redactor.data(self.record))

    def add_parents(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            if run_id not in self.record["parents"]:
                self.record["parents"].append(run_id)
        self.save()

    def add_artifact(self, path: Path | str) -> None:
        relative = str(Path(path).relative_to(self.dir) if Path(path).is_absolute() else path)
        if relative not in self.record["artifacts"]:
            self.record["artifacts"].append(relative)
        self.save()

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self.save()


def attach_run_log(path: Path, redactor: Redactor) -> logging.Handler:
    """Send every log record to ``path`` (run.log), secrets redacted, until ``end_run`` detaches it."""
    handler = _RunLogHandler(path)
    handler.setFormatter(RedactingFormatter(redactor, "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def write_git_diff(run_dir: Path, redactor: Redactor) -> dict[str, Any]:
    """The source revision for run.json; uncommitted changes beside it as git.diff (secrets redacted)."""
    git, diff = provenance.git_state(outputs.repo_root())
    if diff is not None:
        (run_dir / layout.GIT_DIFF).write_text(redactor.text(diff))
    return git


def end_run(run: Run, name: str, status: str, error: BaseException | None, handler: logging.Handler | None) -> None:
    """Close a run: its status, end time and error in run.json, the traceback of a failure in run.log."""
    if error is not None:
        run.record["error"] = {"type": type(error).__name__, "message": str(error)}
        if status == "failed":
            # The traceback is for run.log; the console gets the one-paragraph explanation at exit.
            trace = "".join(traceback.format_exception(error))
            record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s failed:\n%s", (name, trace), None)
            (handler or logging.getLogger()).handle(record)
        else:
            log.warning("%s interrupted: %s", name, error or type(error).__name__)
    try:
        run.update(status=status, ended_at=outputs.now_iso())
    except OSError as unwritable:  # a full disk: the old run.json stays whole, and reads as stale
        log.error("could not write %s (%s): `runner runs` will show the run as stale",
                  run.dir / layout.RUN_JSON, unwritable)  # fmt: skip
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


@contextmanager
def utility_run(parent: Path, command: str, argv: list[str], parents: Sequence[str] = ()) -> Iterator[Run]:
    """The run a utility command makes (compare, report, find-cameras): the same record and run.log as a
    stage's run, ended the same way when the block exits: succeeded, failed with its error, or interrupted."""
    redactor = Redactor()
    run_id, run_dir = outputs.create_unique_dir(parent, command)
    git = write_git_diff(run_dir, redactor)
    args = [redactor.override(a) for a in argv]
    record = provenance.run_record(run_id, command, parent.name, args, args[2:], list(parents), git, outputs.now_iso())
    record["artifacts"] = [layout.RUN_LOG]
    run = Run(run_id, run_dir, record, redactor)
    run.save()
    handler = attach_run_log(run_dir / layout.RUN_LOG, redactor)
    try:
        yield run
    except KeyboardInterrupt as interrupt:
        end_run(run, command, "interrupted", interrupt, handler)
        raise
    except BaseException as error:
        end_run(run, command, "failed", error, handler)
        raise
    end_run(run, command, "succeeded", None, handler)
