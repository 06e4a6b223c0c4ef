"""``runner teleoperate``: the leader arm drives the follower at ``episode.fps``, nothing recorded.

The arms are the ones ``record`` would use (host profile, calibration ids) and pass the same hardware
check first. ``display=true`` adds a live view of the cameras and joints in Rerun (when installed). The
loop rate is shown live and summarised in run.json; ``q`` (or Ctrl-C, SIGTERM, or
``duration_s``) ends it, and torque is released on every way out. In simulation the scripted operator
drives the simulated arm, which makes the command a quick check of a setup without hardware.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time

from omegaconf import DictConfig

from runner.core.context import StageContext
from runner.core.errors import ConfigError
from runner.episodes.keys import Key, KeyReader

log = logging.getLogger("runner.teleoperate")
REPORT_EVERY_S = 5.0


def teleoperate(cfg: DictConfig, ctx: StageContext) -> None:
    from runner.hardware.checks import require_ready_arms, without_cameras
    from runner.lerobot_adapter import devices, live_view

    if cfg.teleop.type == "none":
        raise ConfigError("teleop", "is none: there is no leader to follow", "use teleop=so101_leader")
    if cfg.display and not live_view.available():
        raise ConfigError(
            "display",
            "is true, but the live view needs Rerun (rerun-sdk), which is not installed",
            "install LeRobot's viz extra into the venv (.venv/bin/pip install 'lerobot[viz]'), or leave display=false",
        )
    if not cfg.display:
        cfg = without_cameras(cfg)  # without a view the loop needs no images; cameras would slow it
    robot = devices.make_robot(devices.robot_config(cfg))
    teleop = devices.make_teleop(devices.teleop_config(cfg))
    calibration = require_ready_arms(cfg)
    run = ctx.start_run()
    if calibration:
        run.update(calibration=calibration)
    period = 1.0 / cfg.episode.fps
    keys = KeyReader.for_stdin()
    periods: list[float] = []
    reason = "q"
    try:
        robot.connect()
        teleop.connect()
        if cfg.display:
            live_view.start("runner_teleoperate")
        log.info("teleoperating at %s fps: q to stop%s", cfg.episode.fps,
                 f" (or after {cfg.duration_s} s)" if cfg.duration_s else "")  # fmt: skip
        started = last_report = previous = time.perf_counter()
        while True:
            tick = time.perf_counter()
            action = teleop.get_action()
            robot.send_action(action)
            if cfg.display:
                live_view.show(robot.get_observation(), action)
            if cfg.duration_s is not None and tick - started >= cfg.duration_s:
                reason = "duration"
                break
            if keys is not None and keys.poll() is Key.STOP:
                break
            if tick - last_report >= REPORT_EVERY_S and periods:
                recent = periods[-int(REPORT_EVERY_S * cfg.episode.fps) :]
                log.info("loop rate %.1f Hz (asked %s)", 1 / statistics.fmean(recent), cfg.episode.fps)
                last_report = tick
            remaining = tick + period - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            now = time.perf_counter()
            periods.append(now - previous)
            previous = now
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    finally:
        if keys is not None:
            keys.close()
        if cfg.display:
            live_view.stop()
        devices.release(teleop)
        devices.release(robot)  # LeRobot releases the follower's torque here (disable_torque_on_disconnect)
        if periods:
            ordered = sorted(periods)
            run.update(teleoperation={
                "steps": len(periods), "seconds": round(sum(periods), 2), "ended_by": reason,
                "rate_hz_mean": round(1 / statistics.fmean(periods), 2),
                "rate_hz_p5": round(1 / ordered[int(0.95 * (len(ordered) - 1))], 2),
            })  # fmt: skip
    log.info("teleoperation ended (%s) after %d steps", reason, len(periods))
    if sys.stdout.isatty():
        print(f"teleoperation ended after {len(periods)} steps")
