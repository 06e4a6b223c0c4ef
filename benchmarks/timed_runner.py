"""The `runner` command as the benchmarks call it: the repo's console script, timed, failing loudly."""

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNNER = str(REPO / ".venv" / "bin" / "runner")


def run(args: list[str], env: dict) -> float:
    """Seconds `runner ARGS` took; exits with its log when it fails."""
    start = time.perf_counter()
    result = subprocess.run([RUNNER, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"runner {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start
