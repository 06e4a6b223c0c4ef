"""``runner calibrate``: LeRobot's interactive calibration of the real arms a config names.

The arms' ports and calibration ids come from the host profile and the robot/teleop options, exactly as
``record`` will use them. LeRobot writes its calibration file (keyed by the arm's id) where it always does;
runner keeps a copy in the run directory and records its SHA-256, so every later run that uses the arm can
name the calibration it ran with.
"""

from __future__ import annotations

import hashlib
import logging
import shutil

from omegaconf import DictConfig

from runner.core import layout
from runner.core.context import StageContext
from runner.core.errors import ConfigError

log = logging.getLogger("runner.calibrate")


def calibrate(cfg: DictConfig, ctx: StageContext) -> None:
    from runner.hardware.checks import port_access, without_cameras
    from runner.lerobot_adapter import devices, hardware
    from runner.schema.devices import is_real_arm

    cfg = without_cameras(cfg)  # calibration needs the motors only
    arms = []
    if is_real_arm(cfg.robot):
        arms.append(("robot", cfg.robot, devices.robot_config(cfg)))
    if is_real_arm(cfg.teleop):
        arms.append(("teleop", cfg.teleop, devices.teleop_config(cfg)))
    if not arms:
        raise ConfigError(
            "robot", f"is {cfg.robot.type} and teleop is {cfg.teleop.type}: no real arm to calibrate",
            "name the arms, e.g. runner calibrate robot=so101_follower teleop=so101_leader",
        )  # fmt: skip
    for kind, arm, config in arms:
        access = port_access(f"{kind} port", str(config.port))
        if access.status != "ok":
            key = f"{kind}.port" if arm.port else f"host.ports.{arm.role}"  # where the path came from
            raise ConfigError(key, access.detail, access.fix)
    run = ctx.start_run()
    saved = {}
    for kind, arm, config in arms:
        log.info("calibrating %s %s (id %s) on %s: follow LeRobot's prompts", kind, arm.type, arm.id, config.port)
        written = hardware.calibrate(config)
        copy = run.dir / layout.CALIBRATION_DIR / f"{kind}_{arm.id}.json"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy2(written, copy)
        saved[kind] = {
            "id": arm.id, "type": arm.type, "file": str(written),
            "sha256": hashlib.sha256(written.read_bytes()).hexdigest(),
        }  # fmt: skip
        run.add_artifact(copy)
        log.info("%s calibration saved to %s (sha256 %s)", kind, written, saved[kind]["sha256"][:12])
    run.update(calibration=saved)
