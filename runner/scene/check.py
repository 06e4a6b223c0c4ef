"""A scene check: every camera's live view against the recording's, judged by ``scene.*`` thresholds, with an
overlay image per camera (reference, live, and the live view aligned on the reference with what changed in red)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runner.core import layout
from runner.scene.compare import NothingToCompare, SceneDifference, compare


@dataclass(frozen=True)
class Thresholds:
    max_shift: float  # a share of the image width
    max_rotation_deg: float
    max_changed: float

    @classmethod
    def of(cls, scene: Any) -> Thresholds:
        return cls(float(scene.max_shift), float(scene.max_rotation_deg), float(scene.max_changed))


@dataclass
class CameraResult:
    role: str
    difference: SceneDifference
    problems: list[str]  # what exceeds a threshold, in words
    changed: np.ndarray = field(repr=False)
    overlay: str | None = None  # relative to the run directory, once saved

    def record(self) -> dict[str, Any]:
        return {**self.difference.record(), "problems": self.problems, "overlay": self.overlay}


@dataclass
class SceneCheck:
    reference: str  # what the views are compared with: the recording and its episode
    cameras: list[CameraResult]
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # cameras not compared, and why

    @property
    def changed(self) -> bool:
        return any(c.problems for c in self.cameras)

    def summary(self) -> str:
        """One line per camera that changed: ``side: moved 5.3 px (4 % of its width) right ...``."""
        return "; ".join(f"camera '{c.role}' {', '.join(c.problems)}" for c in self.cameras if c.problems)

    def record(self) -> dict[str, Any]:
        return {"reference": self.reference, "changed": self.changed, "seconds": round(self.seconds, 3),
                "cameras": {c.role: c.record() for c in self.cameras}, "skipped": self.skipped}  # fmt: skip


class CameraUnusable(ValueError):
    """A camera whose live frame shows nothing, or that the recording did not have."""

    def __init__(self, role: str, problem: str) -> None:
        super().__init__(f"camera '{role}': {problem}")
        self.role = role


def judge(difference: SceneDifference, thresholds: Thresholds) -> list[str]:
    problems = []
    if difference.shift_px > thresholds.max_shift * difference.width:
        across = "right" if difference.shift_x_px > 0 else "left"
        down = "down" if difference.shift_y_px > 0 else "up"
        allowed = thresholds.max_shift * difference.width
        problems.append(
            f"moved {difference.shift_px:.1f} px ({abs(difference.shift_x_px):.1f} {across}, "
            f"{abs(difference.shift_y_px):.1f} {down}; scene.max_shift={thresholds.max_shift:g} of its width "
            f"allows {allowed:.1f} px)"
        )
    if abs(difference.rotation_deg) > thresholds.max_rotation_deg:
        problems.append(f"turned {difference.rotation_deg:+.1f} degrees (scene.max_rotation_deg="
                        f"{thresholds.max_rotation_deg:g})")  # fmt: skip
    if difference.changed_fraction > thresholds.max_changed:
        problems.append(f"sees {difference.changed_fraction:.1%} of its view changed beyond that motion (something "
                        f"in the scene moved; scene.max_changed={thresholds.max_changed:g})")  # fmt: skip
    return problems


def check_scene(reference: str, recorded: dict[str, np.ndarray], live: dict[str, np.ndarray],
                thresholds: Thresholds) -> SceneCheck:  # fmt: skip
    """Compare each camera of ``live`` with the same role of ``recorded`` (uint8 RGB frames)."""
    results, skipped = [], {}
    common = sorted(set(live) & set(recorded))
    if not common:
        raise CameraUnusable(", ".join(sorted(live)), f"the recording has none of these cameras (it has "
                             f"{', '.join(sorted(recorded)) or 'none'})")  # fmt: skip
    for role in common:
        then, now = recorded[role], live[role]
        if then.shape != now.shape:  # eval.camera_check=warn let another size through: its views do not compare
            skipped[role] = f"{now.shape[1]}x{now.shape[0]} now, {then.shape[1]}x{then.shape[0]} when recorded"
            continue  # fmt: skip
        try:
            difference, changed = compare(then, now)
        except NothingToCompare as error:
            raise CameraUnusable(role, str(error)) from None
        results.append(CameraResult(role, difference, judge(difference, thresholds), changed))
    return SceneCheck(reference, results, skipped=skipped)


def save_overlays(check: SceneCheck, recorded: dict[str, np.ndarray], live: dict[str, np.ndarray],
                  folder: Path, run_dir: Path) -> None:  # fmt: skip
    """``scene_<role>.png`` per camera: recording | now | the changed pixels in red over the recording."""
    folder.mkdir(parents=True, exist_ok=True)
    for result in check.cameras:
        then, now = recorded[result.role], live[result.role]
        marked = then.copy()
        marked[result.changed] = (0.4 * marked[result.changed] + 0.6 * np.array([255, 0, 0])).astype(np.uint8)
        gap = np.full((then.shape[0], 4, 3), 255, np.uint8)
        row = np.hstack([then, gap, now, gap, marked])
        scale = max(1, 384 // then.shape[1])  # small sim frames are hard to read at their own size
        row = cv2.resize(row, (row.shape[1] * scale, row.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        path = folder / layout.SCENE_OVERLAY.format(role=result.role)
        cv2.imwrite(str(path), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
        result.overlay = str(path.relative_to(run_dir))
