import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROBE = REPO / "tests" / "probe_stage.py"

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture
def outputs_root(tmp_path, monkeypatch) -> Path:
    """An empty outputs root for this test, used by every runner process the test starts."""
    root = tmp_path / "outputs"
    monkeypatch.setenv("RUNNER_OUTPUTS", str(root))
    return root


def run_runner(*args: str, cwd: Path = REPO, timeout: float = 120, env: dict | None = None):
    """`runner ARGS` in a fresh interpreter (as `python -m runner`)."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_probe(*args: str, cwd: Path = REPO, timeout: float = 120, env: dict | None = None):
    """The test-only `probe` stage through the real stage machinery (see probe_stage.py)."""
    return subprocess.run(
        [sys.executable, str(PROBE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_runner(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """`runner ARGS` in the background, its log (stderr) readable line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **popen,
    )


def wait_for_log(process: subprocess.Popen, *words: str) -> None:
    """Read the process's log until a line holds every word."""
    for line in process.stderr:
        if all(word in line for word in words):
            return
    raise AssertionError(f"the process ended without logging {words}")


def start_probe(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROBE), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run_dirs(root: Path) -> list[Path]:
    """Every directory holding a run.json under an outputs root."""
    return sorted(p.parent for p in root.rglob("run.json"))
