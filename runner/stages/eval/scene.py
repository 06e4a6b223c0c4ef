"""The scene check before an evaluation: the cameras now (the simulated world's, or the real arm's with the arm at
its start pose) against the training recording's (``scene_check=refuse|warn|off``, thresholds ``scene.*``).
Refused before the run starts; otherwise the figures go into run.json and metrics.json, an overlay per camera
into eval/."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig

from runner.core import layout
from runner.core.context import Run
from runner.core.errors import ConfigError
from runner.lerobot_adapter.checkpoints import training_dataset
from runner.scene.check import CameraUnusable, SceneCheck
from runner.scene.sources import NoReference, Recorded, check_now, record_of, save_to_run
from runner.stages.eval.policies import PolicySource

log = logging.getLogger("runner.eval")


@dataclass
class CheckedScene:
    mode: str
    check: SceneCheck | None  # None: not checked (off, or no recording to compare with)
    recorded: Recorded | None = None
    live: dict[str, np.ndarray] | None = None

    def record(self) -> dict[str, Any]:
        return record_of(self.check, self.mode)

    def save(self, run: Run) -> None:
        """Overlays into eval/, the result into run.json; a changed scene (scene_check=warn) in the log."""
        if self.check is None:
            run.update(scene_check=self.record())
            return
        save_to_run(run, run.dir / layout.EVAL_DIR, self.mode, self.check, self.recorded, self.live)
        if self.check.changed:
            log.warning("the scene changed since the recording (scene_check=warn): %s", self.check.summary())


def check_before_eval(cfg: DictConfig, source: PolicySource) -> CheckedScene:
    mode = cfg.scene_check.value
    if mode == "off":
        return CheckedScene(mode, None)
    root = training_dataset(source.folder)
    if root is None:
        log.info("scene not checked: the policy's training recording is not on this machine")
        return CheckedScene(mode, None)
    try:
        check, recorded, live = check_now(cfg, root)
    except (NoReference, CameraUnusable) as error:
        raise ConfigError("scene_check", f"cannot compare the scene with the recording: {error}",
                          "evaluate with the recording's cameras, or set scene_check=off") from None  # fmt: skip
    log.info("scene check against %s in %.2f s: %s", check.reference, check.seconds,
             check.summary() or "unchanged")  # fmt: skip
    if check.changed and mode == "refuse":
        raise ConfigError(
            "scene_check",
            f"found the scene changed since the training recording ({check.reference}): {check.summary()}",
            f"put the camera (or the target) back as it was when recording (`runner check-scene {root.parent.name}` "
            "saves what each camera sees now beside what it saw then), or evaluate anyway with scene_check=warn "
            "(the difference is recorded in run.json)",
        )
    return CheckedScene(mode, check, recorded, live)
