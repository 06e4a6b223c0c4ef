"""Episode validation: each broken episode is rejected, naming the check it failed."""

import numpy as np
import pytest

from runner.episodes.validation import EpisodeLimits, FrameLog, check_episode

JOINTS = ["a.pos", "b.pos"]
LIMITS = EpisodeLimits(
    fps=10, min_frames=5, timestamp_tolerance=0.5, max_frozen_frames=2,
    joint_limits={"a.pos": (-90.0, 90.0), "b.pos": (0.0, 100.0)}, cameras=("wrist",),
)  # fmt: skip


def _episode(n=10, *, nan_at=None, frozen_from=None, gap_at=None, shape=(4, 6), out_of_range_at=None):
    log = FrameLog({"wrist": (4, 6)}, JOINTS, idle_threshold=0.1)
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    t = 0.0
    for i in range(n):
        t += 0.3 if i == gap_at else 0.1
        a = float("nan") if i == nan_at else 10.0 + i
        b = 500.0 if i == out_of_range_at else 50.0
        image = still if frozen_from is not None and i >= frozen_from else rng.integers(0, 255, (*shape, 3), np.uint8)
        log.add(t, {"a.pos": a, "b.pos": b, "wrist": image}, {"a.pos": a, "b.pos": b})
    return log.frame()


def test_a_good_episode_passes():
    assert check_episode(_episode(), LIMITS) == []


@pytest.mark.parametrize(
    "episode,expected",
    [
        (dict(nan_at=4), "state.a.pos: finite (no NaN/inf)"),
        (dict(frozen_from=3), "wrist.frozen: camera_not_frozen"),
        (dict(gap_at=5), "timestamp: timestamp_gap"),
        (dict(n=3), "episode: min_length >= 5 frames"),
        (dict(shape=(8, 6)), "wrist.shape_ok: camera_present_with_shape"),
        (dict(out_of_range_at=2), "state.b.pos: joint_range [0, 100]"),
    ],
    ids=["nan", "frozen-camera", "timestamp-gap", "too-short", "camera-shape", "joint-range"],
)
def test_a_broken_episode_names_the_failed_check(episode, expected):
    failures = check_episode(_episode(**episode), LIMITS)
    assert any(f.startswith(expected) for f in failures), failures


def test_a_still_camera_on_a_still_arm_is_not_frozen():
    log = FrameLog({"wrist": (4, 6)}, JOINTS, idle_threshold=0.1)
    image = np.zeros((4, 6, 3), np.uint8)
    for i in range(8):
        log.add(i * 0.1, {"a.pos": 1.0, "b.pos": 2.0, "wrist": image}, {"a.pos": 1.0, "b.pos": 2.0})
    assert check_episode(log.frame(), LIMITS) == []
