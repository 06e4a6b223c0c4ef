"""What a real arm says about itself, asked through LeRobot's own robot and motor-bus classes.

The arm is built from its LeRobot config exactly as the stages build it, but only its motor bus is opened,
without LeRobot's handshake (which stops at the first problem): every motor is pinged, its model number
compared with the one LeRobot expects, and the calibration stored in the motors compared with the
calibration file. Nothing is written to the motors except torque off when the port closes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lerobot.cameras import CameraConfig, make_cameras_from_configs
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.teleoperators import TeleoperatorConfig, make_teleoperator_from_config

# LeRobot's calibration ranges are read back from the motors; a few raw steps of drift are not a mismatch.
RANGE_TOLERANCE = 8


@dataclass
class MotorAnswer:
    name: str
    motor_id: int
    expected_model: int
    model_name: str
    found_model: int | None  # None: the motor did not answer


@dataclass
class ArmReport:
    port: str
    calibration_file: Path
    motors: list[MotorAnswer] = field(default_factory=list)
    # Motors whose stored calibration (homing offset, range) differs from the file: name -> description.
    calibration_mismatch: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _arm(config: RobotConfig | TeleoperatorConfig):
    """The LeRobot robot or teleoperator a config describes (not connected)."""
    make = make_robot_from_config if isinstance(config, RobotConfig) else make_teleoperator_from_config
    return make(config)


def probe_arm(config: RobotConfig | TeleoperatorConfig) -> ArmReport:
    """Ping every motor of the arm and compare its calibration; the port must exist and be accessible."""
    device = _arm(config)
    bus = device.bus
    report = ArmReport(port=str(config.port), calibration_file=Path(device.calibration_fpath))
    try:
        bus.connect(handshake=False)
    except ConnectionError as error:
        report.error = str(error).strip().splitlines()[0]
        return report
    try:
        for name, motor in bus.motors.items():
            found = bus.ping(motor.id)
            expected = bus.model_number_table[motor.model]
            report.motors.append(MotorAnswer(name, motor.id, expected, motor.model, found))
        answering = all(m.found_model == m.expected_model for m in report.motors)
        if answering and report.calibration_file.is_file():
            stored = bus.read_calibration()
            for name, saved in device.calibration.items():
                now = stored.get(name)
                if now is None:
                    continue
                differs = (
                    now.homing_offset != saved.homing_offset
                    or abs(now.range_min - saved.range_min) > RANGE_TOLERANCE
                    or abs(now.range_max - saved.range_max) > RANGE_TOLERANCE
                )
                if differs:
                    report.calibration_mismatch[name] = (
                        f"motor offset {now.homing_offset}, range {now.range_min}-{now.range_max}; file offset "
                        f"{saved.homing_offset}, range {saved.range_min}-{saved.range_max}"
                    )
    finally:
        try:
            bus.disconnect(disable_torque=True)
        except (ConnectionError, RuntimeError):  # a motor that does not answer cannot confirm torque off
            bus.port_handler.closePort()
    return report


def measure_camera(config: CameraConfig, seconds: float = 1.0) -> tuple[int, int, float]:
    """Open a camera through LeRobot as a robot would and time its new frames: (width, height, fps)."""
    camera = make_cameras_from_configs({"probe": config})["probe"]
    camera.connect()
    try:
        frame = camera.async_read(timeout_ms=2000)
        frames, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            frame = camera.async_read(timeout_ms=2000)
            frames += 1
        return frame.shape[1], frame.shape[0], frames / (time.perf_counter() - started)
    finally:
        camera.disconnect()


def calibrate(config: RobotConfig | TeleoperatorConfig) -> Path:
    """LeRobot's own interactive calibration of one arm (it asks on the terminal); returns the file it wrote.

    An existing calibration for the id is replaced: choosing to calibrate is the answer to LeRobot's
    "use the file or recalibrate" question.
    """
    device = _arm(config)
    device.bus.connect()
    try:
        device.calibration = {}
        device.calibrate()
    finally:
        device.bus.disconnect(disable_torque=True)
    return Path(device.calibration_fpath)


def capture_frames(config: CameraConfig, settle_frames: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The last two of ``settle_frames`` RGB frames (auto exposure settles first) from a camera opened through
    LeRobot: two, so a caller can tell a live stream from a frozen one."""
    camera = make_cameras_from_configs({"scene": config})["scene"]
    camera.connect()
    try:
        frames = [np.asarray(camera.async_read(timeout_ms=2000)) for _ in range(max(2, settle_frames))]
        return frames[-2], frames[-1]
    finally:
        camera.disconnect()
