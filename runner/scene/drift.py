"""Drift inside a recording: each episode's start frame against the first episode's, camera by camera.

The scene check compares a session with its recording; this compares a recording with itself, so "the sheet
was fixed from episode 31 on" or "the laptop with the side camera was moved after lunch" shows as a step at
that episode. Each episode starts with the arm at its start pose, so the arm does not count; in a scenario
with a random cube start the cube's own place differs from episode to episode and gives the changed share a
floor of its own: a step above that floor is the scene changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.scene.check import Thresholds, judge
from runner.scene.compare import NothingToCompare, compare


@dataclass(frozen=True)
class EpisodeDrift:
    episode: int
    camera: str
    shift_px: float
    rotation_deg: float
    changed_fraction: float
    problems: list[str]  # what exceeds scene.* against the first episode, in words

    def record(self) -> dict[str, Any]:
        """The JSON row: an episode nothing could be compared in (a black frame) has null figures, not NaN,
        which is not JSON and which a browser's JSON.parse refuses."""
        return {"episode": self.episode, "camera": self.camera, "shift_px": _finite(self.shift_px, 3),
                "rotation_deg": _finite(self.rotation_deg, 3),
                "changed_fraction": _finite(self.changed_fraction, 5), "problems": self.problems}  # fmt: skip


def _finite(value: float, digits: int) -> float | None:
    return round(value, digits) if np.isfinite(value) else None


def scene_drift(first_frames: dict[int, dict[str, np.ndarray]], thresholds: Thresholds,
                reference_episode: int | None = None) -> list[EpisodeDrift]:  # fmt: skip
    """Every episode's first frame (episode -> camera -> uint8 RGB) against ``reference_episode``'s (default: the
    earliest)."""
    if not first_frames:
        return []
    episodes = sorted(first_frames)
    reference = first_frames[episodes[0] if reference_episode is None else reference_episode]
    drift = []
    for episode in episodes:
        for camera, frame in first_frames[episode].items():
            if camera not in reference or reference[camera].shape != frame.shape:
                continue
            try:
                difference, _ = compare(reference[camera], frame)
            except NothingToCompare as error:
                drift.append(EpisodeDrift(episode, camera, float("nan"), float("nan"), float("nan"), [str(error)]))
                continue
            drift.append(EpisodeDrift(episode, camera, difference.shift_px, difference.rotation_deg,
                                      difference.changed_fraction, judge(difference, thresholds)))  # fmt: skip
    return drift


def first_changes(drift: list[EpisodeDrift]) -> dict[str, int | None]:
    """Per camera, the first episode whose start view differs from the first episode's beyond scene.*."""
    changes: dict[str, int | None] = {}
    for row in drift:
        changes.setdefault(row.camera, None)
        if row.problems and changes[row.camera] is None:
            changes[row.camera] = row.episode
    return changes


def thresholds_of_run(config_yaml: Path) -> Thresholds:
    """A record run's scene.* thresholds (a run older than the scene check: today's defaults)."""
    from dataclasses import asdict

    import yaml

    from runner.schema.devices import SceneConfig

    saved = yaml.safe_load(config_yaml.read_text()) if config_yaml.exists() else {}
    return Thresholds(**{**asdict(SceneConfig()), **((saved or {}).get("scene") or {})})


def episodes_unlike(dataset_root: Path, total: int, reference: int, config_yaml: Path) -> set[int]:
    """The episodes of a dataset whose start view differs from episode ``reference``'s beyond the thresholds."""
    from runner.lerobot_adapter.datasets import episode_first_frames

    frames = episode_first_frames(dataset_root, "local/scene_drift", list(range(total)))
    drift = scene_drift(frames, thresholds_of_run(config_yaml), reference)
    return {row.episode for row in drift if row.problems}
