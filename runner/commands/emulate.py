"""``runner emulate``: SO-101 arms without hardware, for ``host=emulated``.

Serves two emulated servo buses (follower and leader, six STS3215 servos each, Feetech's protocol over
real pseudo-terminals) under stable paths, with calibration files that match them, until Ctrl-C. The
leader's joints move along a slow scripted wave, as if an operator held it. The emulated host profile
(conf/host/emulated.yaml) points the arms at these paths and every camera role at a generated test
pattern, so calibrate, doctor, teleoperate, record and eval run LeRobot's real SO-101 code path as they
would on a desk with arms. A utility command: no torch, no Hydra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from runner.hardware.emulated_bus import DEFAULT_DIR, DIR_ENV, EmulatedFeetechBus, emulated_dir

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
CENTER, AMPLITUDE, PERIOD_S = 2048, 300, 8.0


def calibration(bus: EmulatedFeetechBus) -> dict:
    """LeRobot's calibration file for an emulated arm: what its servos store (no offset, full range)."""
    return {
        name: {"id": servo_id, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 4095}
        for name, servo_id in zip(JOINTS, sorted(bus.servos), strict=True)
    }


def wave(bus: EmulatedFeetechBus, stop: threading.Event) -> None:
    """The leader's hand-held motion: each joint on its own slow sine around the middle of its range."""
    started = time.monotonic()
    while not stop.is_set():
        phase = 2 * math.pi * (time.monotonic() - started) / PERIOD_S
        for servo_id, servo in bus.servos.items():
            servo.set_present(round(CENTER + AMPLITUDE * math.sin(phase + servo_id)))
        time.sleep(0.02)


@contextlib.contextmanager
def serve(folder: Path, leader_moves: bool = True):
    """Start both buses, link ``folder/<role>`` to their ports and write ``folder/calibration``; undo on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "calibration").mkdir(exist_ok=True)
    stop = threading.Event()
    with EmulatedFeetechBus() as follower, EmulatedFeetechBus() as leader:
        buses = {"follower": follower, "leader": leader}
        for role, bus in buses.items():
            link = folder / role
            link.unlink(missing_ok=True)
            link.symlink_to(bus.port)
            calibration_file = folder / "calibration" / f"{role}.json"
            calibration_file.write_text(json.dumps(calibration(bus), indent=2))
        mover = threading.Thread(target=wave, args=(leader, stop), daemon=True)
        if leader_moves:
            mover.start()
        try:
            yield buses
        finally:
            stop.set()
            for role in buses:
                (folder / role).unlink(missing_ok=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="runner emulate", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help=f"where the ports appear (default ${DIR_ENV} or "
                        f"{DEFAULT_DIR}; set {DIR_ENV} for the stages too when you change it)")  # fmt: skip
    parser.add_argument("--still", action="store_true", help="the leader does not move")
    args = parser.parse_args(argv)
    folder = args.dir or emulated_dir()
    signal.signal(signal.SIGTERM, _interrupt)
    with serve(folder, leader_moves=not args.still):
        print(
            f"Emulated SO-101 arms ready for host=emulated:\n"
            f"  follower  {folder / 'follower'}\n  leader    {folder / 'leader'}\n"
            f"  calibration files in {folder / 'calibration'}; every camera role is a generated pattern\n"
            "In another terminal, for example:\n"
            "  runner doctor host=emulated robot=so101_follower teleop=so101_leader cameras=wrist_side\n"
            "  runner teleoperate host=emulated robot=so101_follower teleop=so101_leader duration_s=10\n"
            "Ctrl-C stops the arms.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("runner emulate: stopped", file=sys.stderr)
    return 0
