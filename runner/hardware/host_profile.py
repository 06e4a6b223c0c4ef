"""Writing the host profile (conf/host/<name>.yaml) from the discovery dialogues, and asking on the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from runner.core import outputs


def profile_path(host: str, explicit: Path | None = None) -> Path:
    return explicit or outputs.repo_root() / "conf" / "host" / f"{host}.yaml"


def write_profile(profile: Path, section: str, role: str, device: str) -> None:
    """Set ``<section>.<role>`` (ports or cameras) in a host profile, keeping its other keys (not comments)."""
    data = yaml.safe_load(profile.read_text()) if profile.exists() else None
    data = data or {"name": profile.stem}
    data[section] = {**(data.get(section) or {}), role: device}
    header = "# This machine's devices by role (runner find-port / find-cameras write here). See example.yaml.\n"
    profile.parent.mkdir(parents=True, exist_ok=True)
    temporary = profile.with_name(f".{profile.name}.tmp")
    temporary.write_text(header + yaml.safe_dump(data, sort_keys=False))
    temporary.replace(profile)


def ask(prompt: str) -> str:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.strip()
