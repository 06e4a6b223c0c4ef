"""Hardware rows of ``runner doctor``: the arms' ports, motors and calibration, each with its fix.

Run when the doctor is given a config (``runner doctor host=lab robot=so101_follower teleop=so101_leader``):
the config is composed as a stage would compose it, so the doctor checks the very ports and calibration ids
the next ``runner record`` will use. Nothing moves: the buses are only read.
"""

from __future__ import annotations

import grp
import hashlib
import os
import stat
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runner.core import disk
from runner.core.check import FAIL, OK, WARN, Check
from runner.core.errors import ConfigError
from runner.hardware.emulated_bus import emulated_dir
from runner.schema.devices import SIM_ROBOT, is_real_arm


def port_access(name: str, path: str) -> Check:
    """The port exists and this user may read and write it; if not, the group or udev rule to add."""
    port = Path(path)
    if not port.exists():
        if port.parent == emulated_dir():
            fix = "start `runner emulate` in another terminal (it serves the follower and leader ports)"
            return Check(name, FAIL, f"{path} does not exist: no emulated arm is being served there", fix)
        hint = "/dev/serial/by-id/" if os.path.isdir("/dev/serial/by-id") else "/dev/tty.usbmodem* or /dev/ttyACM*"
        return Check(name, FAIL, f"{path} does not exist (unplugged, or another path?)",
                     f"plug the arm in and look in {hint}; `runner find-port` writes the path for you")  # fmt: skip
    if os.access(port, os.R_OK | os.W_OK):
        return Check(name, OK, f"{path} is readable and writable")
    group = grp.getgrgid(port.stat().st_gid).gr_name
    mode = stat.filemode(port.stat().st_mode)
    return Check(
        name, FAIL, f"{path} ({mode}, group {group}) is not readable and writable by {os.environ.get('USER', 'you')}",
        f"add yourself to the group once: `sudo usermod -aG {group} $USER`, then log out and in (or a udev rule: "
        f'SUBSYSTEM=="tty", MODE="0660", GROUP="{group}"); do not chmod 666 the device',
    )  # fmt: skip


def arm_checks(kind: str, device: DictConfig, cfg: DictConfig) -> list[Check]:
    """Port, motors and calibration of one arm (kind: robot or teleop)."""
    from runner.lerobot_adapter import devices
    from runner.lerobot_adapter.hardware import probe_arm

    label = f"{kind} {device.type} ({device.role})"
    try:
        path = devices.device_path(cfg, "port", device.role, device.port)
    except ConfigError as error:
        return [Check(f"{label} port", FAIL, f"`{error.key}` {error.problem}", error.fix)]
    access = port_access(f"{label} port", path)
    if access.status != OK:
        return [access]
    config = devices.robot_config(cfg) if kind == "robot" else devices.teleop_config(cfg)
    report = probe_arm(config)
    if report.error:
        return [access, Check(f"{label} motors", FAIL, report.error, "check the USB cable and the arm's power")]
    silent = [m for m in report.motors if m.found_model is None]
    wrong = [m for m in report.motors if m.found_model is not None and m.found_model != m.expected_model]
    if silent or wrong:
        problems = [f"motor {m.motor_id} ({m.name}) does not answer" for m in silent]
        problems += [f"motor {m.motor_id} ({m.name}) is model {m.found_model}, expected {m.expected_model} "
                     f"({m.model_name})" for m in wrong]  # fmt: skip
        fix = (
            "check the daisy-chain cable to that motor and the 12 V / 5 V supply"
            if silent
            else "this is not the arm the config names, or a motor was replaced: set its id with `lerobot-setup-motors`"
        )
        motors = Check(f"{label} motors", FAIL, "; ".join(problems), fix)
    else:
        ids = ", ".join(str(m.motor_id) for m in report.motors)
        motors = Check(f"{label} motors", OK, f"{len(report.motors)} motors answer (ids {ids}), models as expected")
    rows = [access, motors]
    only = f"robot={device.type} teleop=none" if kind == "robot" else f"robot={SIM_ROBOT} teleop={device.type}"
    lerobot = f"lerobot-calibrate --{kind}.type={device.type} --{kind}.port={path} --{kind}.id={device.id}"
    calibrate = f"run `runner calibrate {only}` (with your host=...), which runs LeRobot's `{lerobot}`"
    if not report.calibration_file.is_file():
        rows.append(Check(f"{label} calibration", FAIL, f"no calibration for id '{device.id}' "
                          f"({report.calibration_file})", calibrate))  # fmt: skip
    elif report.calibration_mismatch:
        detail = "; ".join(f"{name}: {text}" for name, text in report.calibration_mismatch.items())
        rows.append(Check(f"{label} calibration", FAIL, f"the motors' calibration differs from "
                          f"{report.calibration_file}: {detail}", f"recalibrate: {calibrate}"))  # fmt: skip
    elif motors.status == OK:
        digest = hashlib.sha256(report.calibration_file.read_bytes()).hexdigest()
        used = {"id": device.id, "file": str(report.calibration_file), "sha256": digest}
        matches = f"{report.calibration_file} matches the motors"
        rows.append(Check(f"{label} calibration", OK, matches, calibration=used))
    else:
        rows.append(Check(f"{label} calibration", WARN, f"{report.calibration_file} exists; motors not all answering"))
    return rows


def camera_checks(cfg: DictConfig) -> list[Check]:
    """Each real camera of the config opens at its mode; the measured frame rate is reported."""
    from runner.hardware.cameras import EMULATED_PREFIX, CameraProbe, probe_camera

    rows = []
    for role, camera in cfg.cameras.items():
        if camera.type.value != "opencv":
            continue
        name = f"camera {role}"
        device = cfg.host.cameras.get(role)
        if device is None:
            fix = f"run `runner find-cameras`, or add `{role}: /dev/v4l/by-id/...` under cameras:"
            rows.append(Check(name, FAIL, f"`host.cameras.{role}` is not set in this host profile", fix))
            continue
        if str(device).startswith(EMULATED_PREFIX):  # measured through LeRobot, as the robot will read it
            from runner.lerobot_adapter import devices, hardware

            width, height, fps = hardware.measure_camera(devices.camera_config(cfg, role))
            probe = CameraProbe(str(device), True, width, height, "emulated", fps)
        else:
            probe = probe_camera(str(device), camera.width, camera.height, camera.fps, camera.fourcc)
        if not probe.opened:
            fix = "is it plugged in, or used by another program? `runner find-cameras` lists cameras"
            rows.append(Check(name, FAIL, f"{device} does not open or gives no frame", fix))
            continue
        delivered = f"{probe.width}x{probe.height} {probe.fourcc} at {probe.measured_fps:.1f} fps measured"
        asked = f"{camera.width}x{camera.height} {camera.fourcc or ''} at {camera.fps} fps".replace("  ", " ")
        if (probe.width, probe.height) != (camera.width, camera.height):
            rows.append(Check(name, FAIL, f"{device}: asked {asked}, got {delivered}",
                              f"use a mode the camera has (set cameras.{role}.width/height)"))  # fmt: skip
        elif probe.measured_fps < 0.9 * camera.fps:
            rows.append(Check(name, FAIL, f"{device}: asked {asked}, got {delivered}: recording would drop frames",
                              "try fourcc MJPG, another USB port (not through a hub), or a lower fps"))  # fmt: skip
        else:
            rows.append(Check(name, OK, f"{device}: {delivered}"))
    return rows


# The doctor asks for this many times the recording's estimate (runner.core.disk.recording_bytes).
DISK_MARGIN = 2.0


def recording_disk_check(cfg: DictConfig, free_bytes: int) -> Check:
    """Enough free disk for the recording this config plans: staged frames of one episode plus every video."""
    episodes = cfg.episode.num_episodes or sum(s.num_episodes for s in cfg.task.scenarios) or 1
    need = disk.recording_bytes(cfg, episodes)
    plan = (f"{episodes} episodes x {cfg.episode.episode_time_s:g} s at {cfg.episode.fps} fps, "
            f"{len(cfg.cameras)} camera(s): about {need / 1e9:.2f} GB")  # fmt: skip
    if free_bytes < need * DISK_MARGIN:
        return Check("disk for the planned recording", FAIL, f"{plan}, {free_bytes / 1e9:.2f} GB free",
                     "free space, set RUNNER_OUTPUTS to a larger disk, or record fewer/shorter episodes")  # fmt: skip
    return Check("disk for the planned recording", OK, f"{plan}; {free_bytes / 1e9:.0f} GB free")


def without_cameras(cfg: DictConfig) -> DictConfig:
    """A copy of the config with no cameras: for work on the arms alone (probing, calibrating, teleoperating)."""
    cfg = cfg.copy()
    OmegaConf.update(cfg, "cameras", {}, merge=False)
    return cfg


def hardware_checks(cfg: DictConfig, with_teleop: bool = True) -> list[Check]:
    """Rows for the real arms a composed config names (none in simulation)."""
    cfg = without_cameras(cfg)  # cameras have their own rows
    rows = []
    if is_real_arm(cfg.robot):
        rows += arm_checks("robot", cfg.robot, cfg)
    if with_teleop and is_real_arm(cfg.teleop):
        rows += arm_checks("teleop", cfg.teleop, cfg)
    if not rows:
        rows.append(Check("hardware", OK, f"robot={cfg.robot.type}, teleop={cfg.teleop.type}: nothing to probe"))
    return rows


def require_ready_arms(cfg: DictConfig, with_teleop: bool = True) -> dict:
    """Before a stage moves anything: every real arm it uses (the teleop too unless ``with_teleop`` is false)
    answers and is calibrated, else a ConfigError with the doctor's message and fix. Returns the calibration
    files in use with their SHA-256, for run.json."""
    if not is_real_arm(cfg.robot) and not (with_teleop and is_real_arm(cfg.teleop)):
        return {}
    rows = hardware_checks(cfg, with_teleop)
    failed = [row for row in rows if row.status == FAIL]
    if failed:
        key = "teleop" if failed[0].name.startswith("teleop") else "robot"
        raise ConfigError(key, f"failed its hardware check: {failed[0].name}: {failed[0].detail}", failed[0].fix)
    return {row.name.split(" ")[0]: row.calibration for row in rows if row.calibration}
