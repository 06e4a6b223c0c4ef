"""Checks every recorded episode must pass before it is kept, as a pandera schema over its frames.

The recorder logs one row per frame: its capture time, the joint state and action, and per camera whether
the image had the configured shape and whether it was identical to the previous one. The schema checks
timestamps (monotonic, no gap beyond the tolerance), finite values, joints within the robot's range, a
minimum length, every camera present with its shape, and no frozen camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

# Joint readings may overshoot the model's range a little (contacts, calibration): degrees, or gripper %.
RANGE_MARGIN = 5.0


@dataclass(frozen=True)
class EpisodeLimits:
    fps: int
    min_frames: int
    timestamp_tolerance: float
    max_frozen_frames: int
    joint_limits: dict[str, tuple[float, float]]
    cameras: tuple[str, ...]


def _longest_true_run(values: pd.Series) -> int:
    longest = current = 0
    for value in values:
        current = current + 1 if value else 0
        longest = max(longest, current)
    return longest


def episode_schema(limits: EpisodeLimits) -> pa.DataFrameSchema:
    max_gap = (1.0 + limits.timestamp_tolerance) / limits.fps
    columns: dict[str, pa.Column] = {
        "timestamp": pa.Column(
            float,
            [
                pa.Check(lambda s: s.is_monotonic_increasing, name="timestamps_monotonic"),
                pa.Check(lambda s: s.diff().dropna().le(max_gap).all(), name=f"timestamp_gap_<= {max_gap:.3f}s"),
            ],
        )
    }
    for key, (low, high) in limits.joint_limits.items():
        margin = RANGE_MARGIN
        for prefix in ("state.", "action."):
            columns[prefix + key] = pa.Column(
                float,
                [
                    pa.Check(lambda s: np.isfinite(s), name="finite (no NaN/inf)", ignore_na=False),
                    pa.Check(
                        lambda s, lo=low - margin, hi=high + margin: s.between(lo, hi) | ~np.isfinite(s),
                        name=f"joint_range [{low:.0f}, {high:.0f}]",
                        ignore_na=False,
                    ),
                ],
                nullable=True,  # NaN is reported by the finite check, by name
            )
    for role in limits.cameras:
        columns[f"{role}.shape_ok"] = pa.Column(bool, pa.Check(lambda s: s.all(), name="camera_present_with_shape"))
        columns[f"{role}.frozen"] = pa.Column(
            bool,
            pa.Check(
                lambda s: _longest_true_run(s) <= limits.max_frozen_frames,
                name=f"camera_not_frozen (<= {limits.max_frozen_frames} identical frames while moving)",
            ),
        )
    return pa.DataFrameSchema(
        columns,
        checks=pa.Check(lambda df: len(df) >= limits.min_frames, name=f"min_length >= {limits.min_frames} frames"),
        strict=True,
    )


def check_episode(frames: pd.DataFrame, limits: EpisodeLimits) -> list[str]:
    """The failed checks, as 'column: check' strings (empty when the episode is good)."""
    try:
        episode_schema(limits).validate(frames, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        failed = []
        for column, check in zip(cases["column"], cases["check"], strict=True):
            where = column if isinstance(column, str) and column else "episode"
            entry = f"{where}: {check}"
            if entry not in failed:
                failed.append(entry)
        return failed
    return []


class FrameLog:
    """What the recorder notes about each frame, for validation and the per-episode summary."""

    def __init__(self, cameras: dict[str, tuple[int, int]], joints: list[str], idle_threshold: float) -> None:
        self._cameras = cameras  # role -> (height, width)
        self._joints = joints
        self._threshold = idle_threshold
        self.rows: list[dict] = []
        self._previous_images: dict[str, np.ndarray] = {}
        self._previous_state: np.ndarray | None = None

    def add(self, timestamp: float, observation: dict, action: dict) -> None:
        state = np.array([observation[j] for j in self._joints], dtype=float)
        moved = self._previous_state is not None and np.abs(state - self._previous_state).max() > self._threshold
        row: dict = {"timestamp": float(timestamp)}
        row |= {f"state.{j}": float(v) for j, v in zip(self._joints, state, strict=True)}
        row |= {f"action.{j}": float(action[j]) for j in self._joints}
        for role, shape in self._cameras.items():
            image = observation.get(role)
            ok = isinstance(image, np.ndarray) and image.shape[:2] == shape
            row[f"{role}.shape_ok"] = bool(ok)
            previous = self._previous_images.get(role)
            row[f"{role}.frozen"] = bool(ok and moved and previous is not None and np.array_equal(previous, image))
            if ok:
                self._previous_images[role] = image
        self._previous_state = state
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def repeated(self) -> dict[str, int]:
        """Per camera, the frames identical to the one before while the arm moved: a camera delivering fewer
        frames than asked repeats some; a frozen one repeats them all."""
        return {role: sum(row[f"{role}.frozen"] for row in self.rows) for role in self._cameras}
