"""What reaches the console: runner's own lines, and anyone's warnings and errors.

LeRobot logs its whole training config, a line per logged step and "Using video codec" per episode at INFO;
they stay in run.log (every record goes there), so the console reads as runner's progress and results.
"""

from __future__ import annotations

import logging

CONSOLE_LOGGERS = ("runner", "hydra_plugins.runner_sweeper")


class RunnerOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith(CONSOLE_LOGGERS)
