"""The scene check on the simulated world's own frames: a camera moved or turned between recording and testing
is refused with its estimated shift, a target slid a few centimetres is a changed scene, lighting alone is not."""

import numpy as np
import pytest

from runner.scene.check import CameraUnusable, Thresholds, check_scene
from runner.scene.compare import compare
from runner.schema.devices import SceneConfig
from runner.sim.world import PickPlaceWorld, Variation

SIZE = (128, 96)
TARGET = (0.2, 0.08)
DEFAULTS = Thresholds.of(SceneConfig())


def _view(seed: int = 0, camera_moves: dict | None = None, **variation) -> dict[str, np.ndarray]:
    """The side camera's first frame of an episode (the arm at its start pose)."""
    world = PickPlaceWorld({"side": SIZE}, control_dt=0.1, camera_moves=camera_moves)
    try:
        world.reset(seed, Variation(**{"target_position": TARGET, **variation}))
        return {"side": world.render("side")}
    finally:
        world.close()


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    return _view()


def test_the_same_scene_passes_and_lighting_alone_passes(recorded):
    for live in (_view(), _view(lighting_jitter=0.3)):
        check = check_scene("recording", recorded, live, DEFAULTS)
        [side] = check.cameras
        assert not check.changed, check.summary()
        assert side.difference.shift_px < 0.2 and side.difference.changed_fraction < 0.001


@pytest.mark.parametrize("move, shift", [([0.03, 0, 0], 6.2), ([0.01, 0, 0], 2.1), ([0, 0, 0, 3], 3.9)])
def test_a_moved_or_turned_camera_is_refused_with_its_shift(recorded, move, shift):
    check = check_scene("recording", recorded, _view(camera_moves={"side": move}), DEFAULTS)
    [side] = check.cameras
    assert check.changed and "camera 'side' moved" in check.summary()
    assert side.difference.shift_px == pytest.approx(shift, abs=0.6)


def test_a_target_slid_a_few_centimetres_is_a_changed_scene(recorded):
    check = check_scene("recording", recorded, _view(target_position=(0.25, 0.08)), DEFAULTS)
    [side] = check.cameras
    assert check.changed and "view changed" in check.summary()
    assert side.difference.shift_px < 0.6  # the camera did not move: the scene did


def test_a_black_or_flat_frame_names_the_camera(recorded):
    for frame in (np.zeros_like(recorded["side"]), np.full_like(recorded["side"], 128)):
        with pytest.raises(CameraUnusable, match="camera 'side'"):
            check_scene("recording", recorded, {"side": frame}, DEFAULTS)


def test_the_registration_recovers_a_known_image_shift(recorded):
    """An exact shift of the image itself (a camera on a rail): recovered to a fraction of a pixel."""
    image = recorded["side"]
    shifted = np.roll(image, (2, -3), axis=(0, 1))
    difference, _ = compare(image[8:-8, 8:-8], shifted[8:-8, 8:-8])
    assert difference.shift_x_px == pytest.approx(-3, abs=0.3)
    assert difference.shift_y_px == pytest.approx(2, abs=0.3)


@pytest.mark.parametrize(
    "change, first", [({"target_position": (0.25, 0.08)}, 3), ({"camera_moves": {"side": [0.02, 0, 0]}}, 4)]
)
def test_drift_inside_a_recording_shows_at_the_episode_the_scene_changed(change, first):
    """Start frames of six episodes: the same scene (one with other lighting), then from episode ``first`` on a
    target slid 5 cm or a side camera pushed 2 cm."""
    from runner.scene.drift import first_changes, scene_drift

    frames = {episode: _view(**(change if episode >= first else {"lighting_jitter": 0.2 * (episode == 1)}))
              for episode in range(6)}  # fmt: skip
    drift = scene_drift(frames, DEFAULTS)
    assert first_changes(drift) == {"side": first}
    assert [bool(row.problems) for row in drift] == [episode >= first for episode in range(6)]


def test_an_episode_that_starts_black_is_a_problem_with_null_figures_in_the_report(recorded):
    """A covered lens at one episode's start: named as a problem, and its row is still JSON (no NaN)."""
    import json

    from runner.scene.drift import first_changes, scene_drift

    frames = {0: {"side": recorded["side"]}, 1: {"side": np.zeros_like(recorded["side"])}}
    drift = scene_drift(frames, DEFAULTS)
    assert first_changes(drift) == {"side": 1} and "black" in drift[1].problems[0]
    rows = json.loads(json.dumps([row.record() for row in drift], allow_nan=False))
    assert rows[1]["shift_px"] is None and rows[0]["shift_px"] == 0.0
