"""``runner find-cameras``: every camera, the mode it really delivers, a snapshot, and its role.

Each camera is opened with OpenCV and timed (resolution, fourcc, measured fps); a snapshot of each is saved
in this command's run directory so you can tell the wrist camera from the side one; then you name the
role of each (or skip it) and the stable device paths are written to the host profile. No torch, no Hydra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.core import outputs
from runner.core.run import utility_run
from runner.hardware.host_profile import ask, profile_path, write_profile


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="runner find-cameras", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="local", help="host profile to write: conf/host/HOST.yaml (default local)")
    parser.add_argument("--profile", type=Path, help="write this profile file instead of conf/host/HOST.yaml")
    parser.add_argument("--outputs", type=Path, help="outputs root for the snapshots (default: RUNNER_OUTPUTS)")
    args = parser.parse_args(argv)
    from runner.hardware.cameras import list_cameras, probe_camera

    probes = [p for p in (probe_camera(device) for device in list_cameras()) if p.opened]
    if not probes:
        print("runner find-cameras: no camera opened. Plug one in; on Linux check `ls /dev/v4l/by-id/`.",
              file=sys.stderr)  # fmt: skip
        return 1
    import cv2

    root = args.outputs or outputs.default_outputs_root()
    with utility_run(root / "hardware", "find-cameras", ["runner", "find-cameras", *argv]) as run:
        found = _snapshots(probes, run.dir, cv2)
        for camera in found:
            run.add_artifact(camera["snapshot"])
        roles = _ask_roles(found, profile_path(args.host, args.profile))
        run.update(cameras=found, roles=roles)
    return 0


def _snapshots(probes: list, run_dir: Path, cv2) -> list[dict]:
    """A snapshot of each camera in the run directory, and what it delivers."""
    found = []
    for index, probe in enumerate(probes):
        snapshot = run_dir / f"camera_{index}.png"
        cv2.imwrite(str(snapshot), cv2.cvtColor(probe.frame, cv2.COLOR_RGB2BGR))
        found.append({"device": probe.device, "width": probe.width, "height": probe.height, "fourcc": probe.fourcc,
                      "measured_fps": round(probe.measured_fps, 1), "snapshot": snapshot.name})  # fmt: skip
        print(f"[{index}] {probe.device}: {probe.width}x{probe.height} {probe.fourcc} at "
              f"{probe.measured_fps:.1f} fps measured · snapshot {snapshot}")  # fmt: skip
    return found


def _ask_roles(found: list[dict], profile: Path) -> dict[str, str]:
    """Ask the role of each camera and write the named ones to the host profile; Ctrl-D or Ctrl-C writes none."""
    roles: dict[str, str] = {}
    try:
        for index, camera in enumerate(found):
            role = ask(f"Role of camera [{index}] (wrist, side, top, ...; Enter to skip): ")
            if role and not role.isidentifier():
                print(f"'{role}' is not a role name (letters, digits, _): skipped")
            elif role:
                roles[role] = camera["device"]
    except (EOFError, KeyboardInterrupt):
        print("\nrunner find-cameras: stopped; nothing written to the host profile.", file=sys.stderr)
        roles = {}
    for role, device in roles.items():
        write_profile(profile, "cameras", role, device)
        print(f"Wrote cameras.{role}: {device} to {profile}")
    return roles
