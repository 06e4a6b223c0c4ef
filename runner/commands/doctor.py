"""``runner doctor``: check this machine for what the stages need, one row per check, each with its fix."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from runner.core import disk, outputs
from runner.core.check import FAIL, OK, WARN, Check

CV2_WHEELS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
# (distribution, accepted version prefix or None, why the stages need it)
REQUIRED_PACKAGES = (
    ("lerobot", "0.6.", "datasets, recording, training and evaluation"),
    ("torch", None, "training and policies"),
    ("hydra-core", "1.3.", "config composition"),
    ("omegaconf", "2.3.", "config schemas"),
    ("mujoco", None, "the simulated arm"),
    ("av", None, "video encoding/decoding (pyav)"),
    ("pandera", None, "episode validation"),
)
INSTALL_FIX = "run `make setup` (it installs the pinned versions into .venv/)"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    # The package requires >= 3.12 (LeRobot 0.6 does), so reaching this line already proves it.
    return Check("python", OK, f"{'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")


def check_packages() -> list[Check]:
    checks = []
    for dist, prefix, purpose in REQUIRED_PACKAGES:
        version = _version(dist)
        if version is None:
            checks.append(Check(dist, FAIL, f"not installed (needed for {purpose})", INSTALL_FIX))
        elif prefix and not version.startswith(prefix):
            checks.append(Check(dist, WARN, f"{version}; runner is tested with {prefix}x", INSTALL_FIX))
        else:
            checks.append(Check(dist, OK, version))
    return checks


def check_single_cv2() -> Check:
    installed = [f"{d} {v}" for d in CV2_WHEELS if (v := _version(d))]
    if len(installed) == 1:
        return Check("opencv (cv2)", OK, installed[0])
    if not installed:
        return Check("opencv (cv2)", FAIL, "no OpenCV wheel installed", INSTALL_FIX)
    return Check(
        "opencv (cv2)",
        FAIL,
        f"{len(installed)} wheels share one cv2 module: {', '.join(installed)}",
        "keep only opencv-python-headless: `.venv/bin/pip uninstall -y "
        + " ".join(d for d in CV2_WHEELS if d != "opencv-python-headless" and _version(d))
        + " && .venv/bin/pip install --force-reinstall --no-deps opencv-python-headless`",
    )


def _probe(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[bool, str]:
    """Run a snippet in a fresh interpreter, so that a crashing GL or codec library cannot take us down."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f}s"
    lines = (result.stdout if result.returncode == 0 else result.stderr).strip().splitlines()
    return result.returncode == 0, lines[-1] if lines else f"exit code {result.returncode}"


# The encoders behind dataset.vcodec's choices: h264 (the default) is libx264 in PyAV's FFmpeg.
VIDEO_PROBE = """
import av
names = [c for c in ("libx264", "libx265", "libsvtav1", "libaom-av1") if c in av.codecs_available]
encoders = []
for name in names:
    try:
        av.codec.Codec(name, "w")
        encoders.append(name)
    except Exception:
        pass
print(",".join(encoders))
"""


def check_video() -> list[Check]:
    ok, detail = _probe(VIDEO_PROBE)
    encoders = detail.split(",") if ok and detail else []
    if not ok:
        checks = [Check("video (pyav)", FAIL, detail, INSTALL_FIX)]
    elif "libx264" in encoders:
        checks = [Check("video (pyav)", OK, f"encoders: {detail}")]
    elif encoders:
        fix = "set dataset.vcodec=libsvtav1" if "libsvtav1" in encoders else "set dataset.vcodec=hevc"
        checks = [Check("video (pyav)", WARN, f"no H.264 encoder (dataset.vcodec=h264); available: {detail}", fix)]
    else:
        checks = [Check("video (pyav)", FAIL, "pyav has no usable video encoder", INSTALL_FIX)]
    if shutil.which("ffmpeg"):
        checks.append(Check("ffmpeg (optional)", OK, shutil.which("ffmpeg") or ""))
    else:
        checks.append(
            Check(
                "ffmpeg (optional)",
                WARN,
                "no system FFmpeg: torchcodec cannot decode; runner decodes with pyav instead",
                "optional: `apt install ffmpeg` / `brew install ffmpeg` for faster decoding via torchcodec",
            )
        )
    return checks


RENDER_PROBE = """
import mujoco
model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos="0 0 1"/><geom size=".1"/></worldbody></mujoco>')
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(mujoco.MjData(model))
print(renderer.render().shape)
"""


def check_rendering() -> Check:
    """MuJoCo's offscreen rendering: EGL first, then OSMesa, then GLFW (needs a display)."""
    tried = []
    for backend in ("egl", "osmesa", "glfw"):
        if backend == "glfw" and not os.environ.get("DISPLAY"):
            tried.append("glfw: no DISPLAY")
            continue
        ok, detail = _probe(
            RENDER_PROBE, {"MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend if backend != "glfw" else ""}
        )
        if ok:
            return Check("mujoco rendering", OK, f"MUJOCO_GL={backend} renders offscreen")
        tried.append(f"{backend}: {detail[:80]}")
    return Check(
        "mujoco rendering",
        FAIL,
        "; ".join(tried),
        "install a software renderer: `apt install libosmesa6` (Debian/Ubuntu) or the GPU's EGL driver",
    )


def check_outputs(root: Path) -> list[Check]:
    existing = disk.existing_ancestor(root)
    free_gb = disk.free_bytes(existing) / 1e9
    if free_gb < 1:
        space = Check(
            "free disk", FAIL, f"{free_gb:.1f} GB free at {existing}", "free space or set RUNNER_OUTPUTS elsewhere"
        )
    elif free_gb < 10:
        space = Check("free disk", WARN, f"{free_gb:.1f} GB free at {existing}", "datasets and checkpoints need GBs")
    else:
        space = Check("free disk", OK, f"{free_gb:.0f} GB free at {existing}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
        writable = Check("outputs root", OK, f"{root} is writable")
    except OSError as error:
        writable = Check("outputs root", FAIL, f"{root}: {error.strerror}", "set RUNNER_OUTPUTS to a writable folder")
    return [space, writable]


def check_offline() -> Check:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return Check("hugging face hub", OK, "HF_HUB_OFFLINE=1: nothing is downloaded at run time")
    return Check(
        "hugging face hub",
        WARN,
        "HF_HUB_OFFLINE is not set: a missing local file may trigger a download",
        "export HF_HUB_OFFLINE=1 (runner's stages need no network)",
    )


def run_checks(root: Path) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python,
        check_packages,
        check_single_cv2,
        check_video,
        check_rendering,
        lambda: check_outputs(root),
        check_offline,
    ]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def _hardware(overrides: list[str]) -> list[Check]:
    """Compose the config a stage would run with these overrides, then probe its real arms."""
    from runner.core.command_line import compose_without_sweeps
    from runner.core.conf import register_resolvers
    from runner.hardware.checks import camera_checks, hardware_checks, recording_disk_check
    from runner.schema import register_schemas

    register_schemas()
    register_resolvers()
    composed = compose_without_sweeps(overrides)
    if composed is None:
        return [Check("config", FAIL, f"{' '.join(overrides)} does not compose",
                      "run `runner record <the same overrides> --cfg job` to see the error")]  # fmt: skip
    cfg = composed[0]
    space = recording_disk_check(cfg, disk.free_bytes(Path(cfg.paths.outputs)))
    return [*hardware_checks(cfg), *camera_checks(cfg), space]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="runner doctor",
        description="Check this machine for what the stages need. With config overrides (host=NAME "
        "robot=so101_follower teleop=so101_leader ...), also probe those arms: port access, motors, calibration.",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides naming the hardware to check")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--outputs", type=Path, help="outputs root to check (default: RUNNER_OUTPUTS or <repo>/outputs)"
    )
    args = parser.parse_args(argv)
    root = (args.outputs or outputs.default_outputs_root()).expanduser().resolve()
    checks = run_checks(root)
    if args.overrides:
        checks += _hardware(args.overrides)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
        table = Table(title="runner doctor", title_justify="left")
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail, c.fix)
        Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 1 if any(c.status == FAIL for c in checks) else 0
