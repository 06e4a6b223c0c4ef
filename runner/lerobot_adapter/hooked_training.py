"""LeRobot's own training loop, run in this process, with the few hooks runner needs (also each rank's).

``lerobot_train.train`` offers no callbacks, so runner observes it at three documented seams of that module,
restored after every call: ``should_save_checkpoint`` (an explicit checkpoint schedule), the root logger's
``MetricsTracker`` records (exact step/loss/lr values, not parsed text; the held-out loss, which LeRobot
logs only as a line of text, is read from that line) and ``update_last_checkpoint`` (called once a
checkpoint is completely written). ``init_logging`` clears the root logger's handlers, so
runner's own (console and run.log) are put back after it. Resume state is read by LeRobot from
``sys.argv`` (``--config_path``); that is set here for the duration of the call and nowhere else. LeRobot's
tqdm bar is silenced the same way: runner draws its own progress, and the bar would fill run.log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lerobot.configs.train import TrainPipelineConfig
from lerobot.scripts import lerobot_train
from lerobot.utils.logging_utils import MetricsTracker

TRAIN_CONFIG = "train_config.json"


@dataclass
class Hooks:
    on_metrics: Callable[[int, dict[str, float]], None]
    # (step, checkpoint folder, seconds the save took), once the checkpoint is completely written.
    on_checkpoint: Callable[[int, Path, float], None]
    # (step, loss on the held-out episodes), before that step's checkpoint is saved.
    on_validation: Callable[[int, float], None] | None = None
    # ("learnable" or "total", count): the policy's parameters as training starts (fewer learnable with PEFT).
    on_parameters: Callable[[str, int], None] | None = None


# LeRobot reports these only as log lines (the loss also to W&B): read back at their printed precision.
VALIDATION_LINE = re.compile(r"step (\d+): eval_loss=(\S+)$")
PARAMETERS_LINE = re.compile(r"num_(learnable|total)_params=(\d+) ")


class _MetricsTap(logging.Filter):
    def __init__(self, hooks: Hooks) -> None:
        super().__init__()
        self._hooks = hooks

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, MetricsTracker):
            values = record.msg.to_dict()
            self._hooks.on_metrics(int(record.msg.steps), {k: float(v) for k, v in values.items() if _is_number(v)})
        elif isinstance(record.msg, str):
            validation, parameters = VALIDATION_LINE.match(record.msg), PARAMETERS_LINE.match(record.msg)
            if validation and self._hooks.on_validation is not None:
                self._hooks.on_validation(int(validation[1]), float(validation[2]))
            if parameters and self._hooks.on_parameters is not None:
                self._hooks.on_parameters(parameters[1], int(parameters[2]))
        return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@contextmanager
def _hooked(save_steps: list[int], hooks: Hooks, argv: list[str]) -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("should_save_checkpoint", "save_checkpoint", "update_last_checkpoint", "init_logging", "tqdm")
    originals = {name: getattr(lerobot_train, name) for name in names}
    wanted = set(save_steps)
    save_seconds = [0.0]

    def should_save_checkpoint(step: int, save_freq: int, total_steps: int) -> bool:
        return step in wanted or step == total_steps

    def save_checkpoint(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        originals["save_checkpoint"](*args, **kwargs)
        save_seconds[0] = time.perf_counter() - started

    def update_last_checkpoint(checkpoint_dir: Path) -> Path:
        link = originals["update_last_checkpoint"](checkpoint_dir)
        hooks.on_checkpoint(int(Path(checkpoint_dir).name), Path(checkpoint_dir), save_seconds[0])
        return link

    def init_logging(*args: Any, **kwargs: Any) -> None:
        originals["init_logging"](*args, **kwargs)
        root.handlers[:] = handlers
        root.setLevel(level)

    def tqdm(*args: Any, **kwargs: Any) -> Any:
        return originals["tqdm"](*args, **{**kwargs, "disable": True})

    tap = _MetricsTap(hooks)
    saved_argv = sys.argv
    lerobot_train.should_save_checkpoint = should_save_checkpoint
    lerobot_train.save_checkpoint = save_checkpoint
    lerobot_train.update_last_checkpoint = update_last_checkpoint
    lerobot_train.init_logging = init_logging
    lerobot_train.tqdm = tqdm
    root.addFilter(tap)
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved_argv
        root.removeFilter(tap)
        for name, original in originals.items():
            setattr(lerobot_train, name, original)
        root.handlers[:] = handlers
        root.setLevel(level)


@dataclass
class Processes:
    """Where LeRobot's training runs: in this process, or under ``accelerate launch`` (data-parallel processes
    and/or mixed precision), each rank logging to ``log_dir/rank<N>.log``."""

    count: int = 1
    mixed_precision: str = "no"
    log_dir: Path | None = None

    @property
    def in_process(self) -> bool:
        return self.count == 1 and self.mixed_precision == "no"


def run_hooked(config: TrainPipelineConfig, resume_from: Path | None, save_steps: list[int], hooks: Hooks) -> None:
    """LeRobot's training with runner's hooks, in this process (also each rank of an accelerate launch)."""
    argv = [sys.argv[0]] if resume_from is None else [sys.argv[0], f"--config_path={resume_from}"]
    with _hooked(save_steps, hooks, argv):
        lerobot_train.train(config)
