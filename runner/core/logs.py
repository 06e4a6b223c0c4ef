"""What reaches the console: runner's own lines, and anyone's warnings and errors.

LeRobot logs its whole training config, a line per logged step and "Using video codec" per episode at INFO;
they stay in run.log (every record goes there), so the console reads as runner's progress and results.
runner's own detail for the record only is logged with ``extra=RUN_LOG_ONLY``.
"""

from __future__ import annotations

import logging
import sys

CONSOLE_LOGGERS = ("runner", "hydra_plugins.runner_sweeper")
RUN_LOG_ONLY = {"console": False}


class RunnerOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.name.startswith(CONSOLE_LOGGERS) and getattr(record, "console", True)


def console_log() -> None:
    """For a command outside a run (runner push, runner dataset): runner's INFO lines and anyone's warnings on
    the console, plain. On the root logger, installed before LeRobot is imported: a module of LeRobot's logs at
    import time, which would otherwise give the root logger a second handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RunnerOnly())
    logging.getLogger().addHandler(handler)
    logging.getLogger("runner").setLevel(logging.INFO)
