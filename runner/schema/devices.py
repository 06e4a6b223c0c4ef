"""Schemas of the robot, teleop and cameras groups: the fields of LeRobot's own device configs, plus roles
and the simulated devices' options."""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from runner.schema.fields import CameraType, ColorMode, RenderQuality, bounded

# The one place that says what is simulated: runner's own LeRobot robot and operator types.
SIM_ROBOT = "sim_so101"
SIM_OPERATOR = "sim_scripted"
# The real arms LeRobot drives over a serial bus: they need a port, calibration and `runner doctor`.
REAL_ARMS = ("so100_follower", "so101_follower", "so100_leader", "so101_leader")


def is_simulated(robot: Any) -> bool:
    """Whether a robot config (``cfg.robot``) is the simulated arm: sim time, success signal, scripted resets."""
    return robot.type == SIM_ROBOT


def is_real_arm(device: Any) -> bool:
    """Whether a robot or teleop config is a real SO arm on a serial port."""
    return device.type in REAL_ARMS


# --- robot -------------------------------------------------------------------------------------------


@dataclass
class SimCameraMoves:
    """A static camera moved off the place it was recorded from, to reproduce "the side camera was on a laptop we
    moved at lunch": [dx, dy, dz] metres, optionally a 4th value, a turn about the vertical in degrees."""

    side: list[float] = field(default_factory=list)
    top: list[float] = field(default_factory=list)


def camera_moves(robot: Any) -> dict[str, list[float]]:
    """The sim robot's moved cameras (role -> [dx, dy, dz(, turn_deg)]), checked; none for a real robot."""
    from runner.core.errors import ConfigError

    moves = {}
    for role, move in (robot.get("camera_moves") or {}).items():
        if not move:
            continue
        if len(move) not in (3, 4):
            raise ConfigError(f"robot.camera_moves.{role}", f"is {list(move)}",
                              "give [dx, dy, dz] in metres, or [dx, dy, dz, turn_deg]")  # fmt: skip
        moves[str(role)] = [float(v) for v in move]
    return moves


@dataclass
class SimRobotConfig:
    """The simulated SO-101 arm (MuJoCo); same joints and feature names as LeRobot's so101_follower."""

    type: str = SIM_ROBOT
    id: str = SIM_ROBOT
    max_relative_target: float | None = bounded(None, gt=0)
    render: RenderQuality = RenderQuality.fast
    camera_moves: SimCameraMoves = field(default_factory=lambda: SimCameraMoves())


@dataclass
class SOFollowerConfig:
    """A real SO-100/SO-101 follower arm (LeRobot ``so100_follower`` / ``so101_follower``).

    The serial port comes from the host profile by ``role``; ``port`` overrides it for one run.
    """

    type: str = MISSING
    id: str = MISSING
    role: str = "follower"
    port: str | None = None
    # Degrees of joint motion allowed per control step: LeRobot leaves it unlimited, we do not.
    max_relative_target: float | None = bounded(10.0, gt=0)
    disable_torque_on_disconnect: bool = True
    use_degrees: bool = True
    calibration_dir: str | None = None


# --- teleop ------------------------------------------------------------------------------------------


@dataclass
class ScriptedTeleopConfig:
    """A scripted operator that solves the sim task; stands in for the human in simulation."""

    type: str = SIM_OPERATOR
    id: str = "scripted"
    operator: str = "scripted"
    speed: float = bounded(1.0, gt=0)
    noise: float = bounded(0.0, ge=0)
    failure_rate: float = bounded(0.0, ge=0, le=1)
    # Fractional speed-up per recorded episode (0 = a steady operator).
    learning_rate: float = bounded(0.0, ge=0)


@dataclass
class SOLeaderConfig:
    """A real SO-100/SO-101 leader arm (LeRobot ``so100_leader`` / ``so101_leader``)."""

    type: str = MISSING
    id: str = MISSING
    role: str = "leader"
    port: str | None = None
    operator: str = "human"
    use_degrees: bool = True
    calibration_dir: str | None = None


@dataclass
class NoTeleopConfig:
    """No teleoperator: the policy or nothing drives the robot."""

    type: str = "none"


# --- cameras -----------------------------------------------------------------------------------------


@dataclass
class CameraConfig:
    """One camera, named by its role (wrist, side, top, ...) in the ``cameras`` group.

    The device (index or stable path) is machine-specific and lives in the host profile by role.
    """

    type: CameraType = CameraType.opencv
    width: int = bounded(640, ge=1)
    height: int = bounded(480, ge=1)
    fps: int = bounded(30, ge=1)
    fourcc: str | None = None
    color_mode: ColorMode = ColorMode.rgb
    rotation: int = 0


@dataclass
class SceneConfig:
    """How far each camera's view may be from the recording's before the scene counts as changed (see
    ``runner.scene``): measured with the arm at its start pose, against the recording's first episode."""

    # How far the view may have moved at its centre, as a share of the image width (0.01: 1.3 px at 128 px,
    # 6.4 px at 640; a side camera pushed 1 cm moves the sim's 128x96 view about 2 px).
    max_shift: float = bounded(0.01, ge=0)
    max_rotation_deg: float = bounded(1.0, ge=0)
    # The share of the view's pixels whose colour may have changed beyond that motion. In the sim's 128x96 side
    # view a target slid 3 cm changes 0.53 %, 5 cm 0.94 %; the recording's own video against a fresh frame 0.03 %
    # at 128x96 but 0.3 % at 64x48 (colour edges are a larger share of a small image).
    max_changed: float = bounded(0.005, ge=0, le=1)
