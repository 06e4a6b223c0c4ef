"""``runner find-port``: which serial port is this arm? Unplug it, replug it, and the host profile knows.

The port that disappears while the arm is unplugged is the arm's. On Linux its stable name under
``/dev/serial/by-id/`` (the same after a reboot or a replug into another socket) is written to the host
profile under the role you name; elsewhere the device name itself (``/dev/tty.usbmodem...`` on macOS).
A utility command: no torch, no Hydra.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runner.hardware.host_profile import ask, profile_path, write_profile

# Where udev keeps stable serial names; tests point it at a folder of links to ptys.
BY_ID_ENV = "RUNNER_SERIAL_BY_ID"


def serial_ports() -> set[str]:
    """The serial ports present now, by their most stable name."""
    by_id = Path(os.environ.get(BY_ID_ENV, "/dev/serial/by-id"))
    if by_id.is_dir():
        return {str(link) for link in by_id.iterdir()}
    from serial.tools import list_ports

    return {port.device for port in list_ports.comports()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="runner find-port", description=__doc__.split("\n")[0])
    parser.add_argument("--role", help="the arm's role in experiments: follower, leader, ... (asked if omitted)")
    parser.add_argument("--host", default="local", help="host profile to write: conf/host/HOST.yaml (default local)")
    parser.add_argument("--profile", type=Path, help="write this profile file instead of conf/host/HOST.yaml")
    args = parser.parse_args(argv)
    profile = profile_path(args.host, args.profile)
    try:
        role = args.role or ask("Which arm is it (its role: follower, leader, ...)? ")
        if not role.isidentifier():
            print(f"runner find-port: '{role}' is not a role name (letters, digits, _)", file=sys.stderr)
            return 2
        before = serial_ports()
        if not before:
            print("runner find-port: no serial port found. Plug the arm's USB cable in (and power it), then retry.",
                  file=sys.stderr)  # fmt: skip
            return 1
        ask(f"Found {len(before)} serial port(s). Unplug the USB cable of the {role} arm, then press Enter. ")
        gone = sorted(before - serial_ports())
        if len(gone) != 1:
            what = "no port disappeared" if not gone else f"{len(gone)} ports disappeared ({', '.join(gone)})"
            print(f"runner find-port: {what}; unplug exactly one arm and retry.", file=sys.stderr)
            return 1
        port = gone[0]
        print(f"The {role} arm is on {port}")
        ask("Plug it back in, then press Enter. ")
        if port not in serial_ports():
            print(f"runner find-port: {port} did not come back; check the cable (the profile is written anyway).",
                  file=sys.stderr)  # fmt: skip
    except (EOFError, KeyboardInterrupt):
        print("\nrunner find-port: stopped; nothing written.", file=sys.stderr)
        return 130
    write_profile(profile, "ports", role, port)
    print(f"Wrote ports.{role}: {port} to {profile}")
    from runner.hardware.checks import port_access

    access = port_access(f"{role} port", port)
    if access.status != "ok":
        print(f"{access.detail}. Fix: {access.fix}")
    return 0
