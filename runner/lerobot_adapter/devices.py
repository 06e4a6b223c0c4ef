"""Robots, teleoperators and cameras from runner's config, as LeRobot's own config dataclasses and factories.

Runner configs become LeRobot's config dataclasses (``draccus.decode``), so LeRobot validates what it owns.
Importing this module registers runner's own device types with LeRobot (``sim_so101``, ``sim_scripted``,
``runner_emulated``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import draccus
from lerobot.cameras import CameraConfig
from lerobot.cameras.opencv import configuration_opencv  # noqa: F401  (registers the opencv camera type)
from lerobot.cameras.realsense import configuration_realsense  # noqa: F401  (registers intelrealsense)
from lerobot.robots import (
    RobotConfig,
    make_robot_from_config,
    so_follower,  # noqa: F401  (registers so100_follower, so101_follower)
)
from lerobot.robots.robot import Robot
from lerobot.teleoperators import (
    TeleoperatorConfig,
    make_teleoperator_from_config,
    so_leader,  # noqa: F401  (registers so100_leader, so101_leader)
)
from lerobot.teleoperators.teleoperator import Teleoperator
from omegaconf import DictConfig, OmegaConf

from runner.core.errors import ConfigError
from runner.hardware.cameras import EMULATED_PREFIX
from runner.lerobot_adapter import emulated_camera, sim_devices  # noqa: F401  (register runner's device types)
from runner.schema.devices import SIM_OPERATOR, SIM_ROBOT, camera_moves, is_simulated

log = logging.getLogger("runner.hardware")


def device_path(cfg: DictConfig, kind: str, role: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    path = cfg.host.ports.get(role) if kind == "port" else cfg.host.cameras.get(role)
    if path is None:
        where = "host.ports" if kind == "port" else "host.cameras"
        raise ConfigError(
            f"{where}.{role}",
            f"is not set: the experiment needs a {kind} for the '{role}' role and this host profile has none",
            f"run `runner find-port` or add `{role}: /dev/...` under `{where.split('.')[1]}:` in conf/host/local.yaml",
        )
    return str(path)


def robot_config(cfg: DictConfig) -> RobotConfig:
    """The LeRobot robot config for a runner config (robot, cameras by role, host devices)."""
    robot = cfg.robot
    if is_simulated(robot):
        sizes = {}
        for role, camera in cfg.cameras.items():
            if camera.type.value != "sim":
                raise ConfigError(
                    f"cameras.{role}.type",
                    f"is {camera.type.value}, but the simulated robot only has sim cameras",
                    "use cameras=sim_wrist_side (or another sim camera option) with robot=sim_so101",
                )
            sizes[role] = [camera.width, camera.height]
        fields = {
            "type": SIM_ROBOT,
            "id": robot.id,
            "fps": cfg.episode.fps,
            "camera_sizes": sizes,
            "max_relative_target": robot.max_relative_target,
            "render": robot.render.value,
            "camera_moves": camera_moves(robot),
        }
    else:
        cameras = {role: _camera_fields(cfg, role) for role in cfg.cameras}
        fields = {
            "type": robot.type,
            "id": robot.id,
            "port": device_path(cfg, "port", robot.role, robot.port),
            "max_relative_target": robot.max_relative_target,
            "disable_torque_on_disconnect": robot.disable_torque_on_disconnect,
            "use_degrees": robot.use_degrees,
            "calibration_dir": robot.calibration_dir or cfg.host.calibration_dir,
            "cameras": cameras,
        }
    return draccus.decode(RobotConfig, _without_none(fields))


def _camera_fields(cfg: DictConfig, role: str) -> dict[str, Any]:
    """One real camera's LeRobot config fields: the experiment's mode, the host profile's device."""
    camera = cfg.cameras[role]
    if camera.type.value == "sim":
        raise ConfigError(
            f"cameras.{role}.type", "is sim, but a real robot needs real cameras", "use cameras=wrist_side"
        )
    device = device_path(cfg, "camera", role, None)
    entry: dict[str, Any] = {
        "type": camera.type.value,
        "fps": camera.fps,
        "width": camera.width,
        "height": camera.height,
        "color_mode": camera.color_mode.value,
    }
    if device.startswith(EMULATED_PREFIX):  # a stand-in camera: emulated:<source>[@<fps>][?faults=<file>]
        spec, _, query = device.removeprefix(EMULATED_PREFIX).partition("?")
        source, _, delivered = spec.partition("@")
        options = dict(item.partition("=")[::2] for item in query.split("&") if item)
        entry |= {"type": "runner_emulated", "source": source, "delivered_fps": int(delivered) if delivered else None,
                  "faults": options.get("faults")}  # fmt: skip
    elif camera.type.value == "opencv":
        entry |= {"index_or_path": int(device) if device.isdigit() else device, "fourcc": camera.fourcc}
        entry["rotation"] = camera.rotation
    else:
        entry["serial_number_or_name"] = device
    return entry


def camera_config(cfg: DictConfig, role: str) -> CameraConfig:
    """The LeRobot camera config the robot will use for ``role``."""
    return draccus.decode(CameraConfig, _without_none(_camera_fields(cfg, role)))


def teleop_config(cfg: DictConfig) -> TeleoperatorConfig | None:
    teleop = cfg.teleop
    if teleop.type == "none":
        return None
    if teleop.type == SIM_OPERATOR:
        if not is_simulated(cfg.robot):
            raise ConfigError(
                "teleop", "is the scripted sim operator, but the robot is real", "use teleop=so101_leader"
            )
        fields = OmegaConf.to_container(teleop) | {"robot_id": cfg.robot.id}
        fields.pop("operator", None)
    else:
        fields = {
            "type": teleop.type,
            "id": teleop.id,
            "port": device_path(cfg, "port", teleop.role, teleop.port),
            "use_degrees": teleop.use_degrees,
            "calibration_dir": teleop.calibration_dir or cfg.host.calibration_dir,
        }
    return draccus.decode(TeleoperatorConfig, _without_none(fields))


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def make_robot(config: RobotConfig) -> Robot:
    return make_robot_from_config(config)


def make_teleop(config: TeleoperatorConfig | None) -> Teleoperator | None:
    return None if config is None else make_teleoperator_from_config(config)


def release(device: Robot | Teleoperator) -> str | None:
    """Disconnect a robot or teleoperator, releasing torque where LeRobot does (disable_torque_on_disconnect).

    An arm that no longer answers (unplugged, power lost) cannot confirm torque off: its port and cameras
    are closed anyway, and the reason is returned (None when the release went through) for the caller's
    message. Never raises on that path, so the error that stopped the stage is the one reported.

    LeRobot turns torque off motor by motor and stops at the first that does not answer: with one silent
    servo, the motors after it would stay stiff. Each motor is then asked on its own.
    """
    if not device.is_connected:
        return None
    try:
        device.disconnect()
        return None
    except (ConnectionError, RuntimeError, OSError) as error:
        bus = getattr(device, "bus", None)
        if bus is not None:
            for motor in bus.motors:
                with contextlib.suppress(Exception):
                    bus.disable_torque(motor, num_retry=2)
            with contextlib.suppress(Exception):
                bus.port_handler.closePort()
        for camera in getattr(device, "cameras", {}).values():
            if camera.is_connected:
                with contextlib.suppress(Exception):
                    camera.disconnect()
        reason = str(error).strip().splitlines()[0]
        log.warning("%s did not confirm torque off (%s): its port was closed anyway", device, reason)
        return reason
