"""The `runner` command as the benchmarks call it: the repo's console script, timed, failing loudly."""

import re
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


SERVED_AT = re.compile(r" on (\S+):(\d+)")  # `runner serve: ... on HOST:PORT`


def serve(env: dict, *overrides: str) -> tuple[subprocess.Popen, str]:
    """`runner serve` of the sim_demo experiment on a free port, once it printed the address it bound."""
    server = subprocess.Popen(
        [RUNNER, "serve", "experiment=sim_demo", "serve.port=0", *overrides], env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for line in server.stderr:
        if line.startswith("runner serve:"):
            host, port = SERVED_AT.search(line).groups()
            return server, f"{host}:{port}"
    raise SystemExit(f"runner serve did not start (exit {server.wait()})")
