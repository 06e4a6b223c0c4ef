"""Start `runner` in the suite without paying LeRobot's imports each time: a fork server for the tests.

A fresh interpreter spends 4-6 s of CPU importing torch, LeRobot, datasets, transformers and MuJoCo before a
stage does anything, and the suite starts a few hundred of them on 2 cores. This server imports all of that
once; each `runner ARGS` is then a fork of it that runs ``runner.cli.main(ARGS)`` (or a script, as
``python SCRIPT ARGS`` would) in its own process, with the caller's working directory, environment and
standard streams. It is the same code as the console script; only the imports are already done. Forking
after these imports is what LeRobot's DataLoader workers do on Linux; nothing here has started a thread that
holds a lock (the server checks there is one Python thread), and no GL context or torch thread pool exists
before the fork.

An environment that differs in a variable read while importing (HF_ENDPOINT, HF_HOME, MUJOCO_GL, PYTHON*,
...) is served by a server started with that environment (`_Servers`); run-time variables (RUNNER_*, HF_TOKEN,
...) only reach the child. What a fork cannot honour goes to a fresh interpreter (`eligible`): extra Popen
arguments (preexec_fn, start_new_session). ``RUNNER_TEST_COLD=1`` sends every start to a fresh interpreter.

Protocol, one Unix-socket connection per process: the client sends a JSON request with its stdin, stdout
and stderr as file descriptors (SCM_RIGHTS); the server answers ``pid\\n`` then, when the child ends,
``returncode\\n`` (negative for a signal, as subprocess reports it).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNNER_MAIN = REPO / "runner" / "__main__.py"
# Variables that may differ from the server's environment: read by runner or its tools when used, not when
# imported. Any other difference (HF_ENDPOINT, HF_HOME, MUJOCO_GL, TMPDIR, PYTHONPATH, ...) needs a server of
# its own.
RUNTIME_ONLY_PREFIXES = ("RUNNER_", "SLURM_", "SUBMITIT_", "PYTEST_")  # PYTEST_CURRENT_TEST changes every test
# What stages import, in order (runner.sim first: it picks MuJoCo's GL backend before mujoco is imported), and
# what they import later, when first used (about 1 s a child): the episode checks (pandera's backends, and
# hypothesis's strategies, which pandera imports where the dev extras installed hypothesis), the simulated
# devices, scene checks, and matplotlib, which stages always use headless.
PRELOADED = ("runner.sim", "torch", "mujoco", "lerobot.datasets.lerobot_dataset", "lerobot.policies.factory",
             "lerobot.policies.act.modeling_act", "runner.cli", "runner.core.command_line",
             "runner.lerobot_adapter.dataset_recorder", "runner.lerobot_adapter.evaluation",
             "runner.lerobot_adapter.training", "runner.stages.record", "runner.stages.train",
             "runner.stages.eval", "runner.stages.eval.in_sim", "runner.stages.pipeline",
             "runner.lerobot_adapter.sim_devices", "runner.episodes.validation", "pandera.backends.pandas.register",
             "pandera.strategies.pandas_strategies", "runner.scene.check", "runner.hardware.checks", "runner.stats",
             "runner.commands.compare", "matplotlib.pyplot")  # fmt: skip
RUNTIME_ONLY = {"HF_TOKEN", "WANDB_API_KEY", "MY_TOKEN", "SHORT_KEY", "PATH", "COMP_LINE"}


# --- the server -------------------------------------------------------------------------------------------


def _preload() -> dict[str, str]:
    """Import what stages import; returns the variables those imports set (a fresh interpreter sets them too)."""
    before = dict(os.environ)
    import matplotlib

    matplotlib.use("Agg")
    for module in PRELOADED:
        importlib.import_module(module)
    set_by_imports = {key: value for key, value in os.environ.items() if before.get(key) != value}
    # MuJoCo keeps the meshes it decoded in a process-wide cache (the first scene a process compiles costs 1.5-2.5 s,
    # the next 0.2 s) and runner.sim.world keeps the compiled scene: a world built here (never rendered: no GL
    # context) fills both for every child.
    from runner.sim.world import PickPlaceWorld

    PickPlaceWorld({"side": (128, 96)}, control_dt=0.1)
    # Hydra discovers its plugins once per process (runner's sweeper, the launchers): a composition does it.
    from runner.core.conf import compose_config

    compose_config(["experiment=sim_demo"])
    return set_by_imports


def _child(request: dict, fds: list[int], set_by_imports: dict[str, str]) -> None:
    """In the forked child: become ``python -m runner ARGS`` (or ``python SCRIPT ARGS``); never returns."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has them
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update({**set_by_imports, **request["env"]})
    os.chdir(request["cwd"])
    script = request["script"]
    sys.argv = [script, *request["args"]]
    if script == str(RUNNER_MAIN):
        from runner.cli import main

        raise SystemExit(main(request["args"]))
    import runpy

    sys.path.insert(0, str(Path(script).parent))
    runpy.run_path(script, run_name="__main__")
    raise SystemExit(0)


def serve(path: str) -> None:
    """Listen on ``path``; fork a child per request; report each child's end. Exits when its parent does."""
    set_by_imports = _preload()
    import threading
    import warnings

    assert threading.active_count() == 1, "a Python thread alive at fork time would be lost mid-work in a child"
    # The native threads (OpenBLAS's pool, jemalloc's background thread) re-create themselves after a fork
    # through their own atfork handlers, as in every forked DataLoader worker: Python's warning does not apply.
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    parent = os.getppid()
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    while os.getppid() == parent:
        for _ in selector.select(timeout=0.02):
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            request = json.loads(message)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in children.values():
                    other.close()
                connection.close()
                _child(request, fds, set_by_imports)
            for fd in fds:
                os.close(fd)
            connection.sendall(f"{pid}\n".encode())
            children[pid] = connection
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if (connection := children.pop(pid, None)) is not None:
                with contextlib.suppress(OSError):  # the caller may have gone
                    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                connection.close()
    for pid in children:  # the suite ended: its runners end with it, as they would with the terminal
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- the client -------------------------------------------------------------------------------------------


class _Server:
    """A server started with one environment: it serves starts whose environment differs from it only in
    run-time variables."""

    def __init__(self, env: dict[str, str]) -> None:
        import tempfile

        self.env = env
        self.path = os.path.join(tempfile.mkdtemp(prefix="runner-warm-"), "socket")
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.path], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the warm-start server did not start: {line!r}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class _Servers:
    """The servers of one test process, one per import-time environment (the suite's own; a test Hub's
    HF_ENDPOINT and HF_HOME; ...), each started on first use. The least recently used is stopped beyond
    ``MAX_SERVERS``: each holds torch, LeRobot and transformers in memory (about 1 GB). A stopped server cannot
    report the exit of a runner it started that is still running: no test holds runs of four environments at
    once (the most is the Hub test that kills its Hub: the suite's, the Hub's, the dying and the restarted Hub's,
    one after the other)."""

    MAX_SERVERS = 3

    def __init__(self) -> None:
        self.by_key: dict[tuple, _Server] = {}

    def for_env(self, env: dict[str, str]) -> _Server:
        key = _import_time_key(env)
        server = self.by_key.pop(key, None)
        if server is None or not server.alive():
            server = _Server(dict(env))
        self.by_key[key] = server  # the most recently used last
        while len(self.by_key) > self.MAX_SERVERS:
            self.by_key.pop(next(iter(self.by_key))).stop()
        return server

    def stop(self) -> None:
        for server in self.by_key.values():
            server.stop()
        self.by_key.clear()


SERVERS = _Servers()


def _run_time_only(key: str) -> bool:
    return key in RUNTIME_ONLY or key.startswith(RUNTIME_ONLY_PREFIXES)


def _import_time_key(env: dict[str, str]) -> tuple:
    return tuple(sorted((key, value) for key, value in env.items() if not _run_time_only(key)))


def eligible(env: dict[str, str], popen_kwargs: dict) -> bool:
    """Whether a fork of a server is the same as a fresh interpreter for this start (``RUNNER_TEST_COLD=1``:
    never; extra Popen arguments: a fork cannot honour them)."""
    return os.environ.get("RUNNER_TEST_COLD") != "1" and not popen_kwargs


def _stream(spec, inherited: int) -> tuple[int, int | None]:
    """(fd for the child, fd the caller keeps, or None) for a Popen-style stream spec; ``inherited`` is the
    caller's own fd for it (0, 1 or 2), which None passes on."""
    if spec == subprocess.PIPE:
        read, write = os.pipe()
        return (read, write) if inherited == 0 else (write, read)
    if spec == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None
    if spec is None:
        return os.dup(inherited), None
    return os.dup(spec if isinstance(spec, int) else spec.fileno()), None


def _text(fd: int | None, mode: str):
    return None if fd is None else open(fd, mode, encoding="utf-8", errors="replace")


class WarmProcess:
    """A `subprocess.Popen` look-alike for a runner forked by the server: pid, streams, poll, wait,
    communicate, signals, and a returncode that is negative for a signal."""

    def __init__(self, args: list[str], *, script: Path = RUNNER_MAIN, cwd: Path = REPO, env: dict[str, str],
                 stdin=None, stdout=None, stderr=None) -> None:  # fmt: skip
        self.args = [sys.executable, str(script), *args]
        self.returncode: int | None = None
        child_in, stdin_fd = _stream(stdin, 0)
        child_out, stdout_fd = _stream(stdout, 1)
        child_err, stderr_fd = (os.dup(child_out), None) if stderr == subprocess.STDOUT else _stream(stderr, 2)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(SERVERS.for_env(env).path)
        request = {"script": str(script), "args": list(args), "cwd": str(cwd), "env": env}
        socket.send_fds(self._socket, [json.dumps(request).encode()], [child_in, child_out, child_err])
        for fd in (child_in, child_out, child_err):
            os.close(fd)
        self._replies = b""
        self.pid = int(self._reply(None))
        self.stdin = _text(stdin_fd, "w")
        self.stdout = _text(stdout_fd, "r")
        self.stderr = _text(stderr_fd, "r")

    def _reply(self, timeout: float | None) -> str | None:
        """The server's next line, waiting up to ``timeout`` s (None: for ever); None if none came in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._replies:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._socket], [], [], left)
            if not readable:
                return None
            data = self._socket.recv(64)
            if not data:
                return str(-signal.SIGKILL)  # the server itself was killed, and its children with it
            self._replies += data
        line, self._replies = self._replies.split(b"\n", 1)
        return line.decode()

    def _collect(self, timeout: float | None) -> None:
        if self.returncode is None and (line := self._reply(timeout)) is not None:
            self.returncode = int(line)
            self._socket.close()

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._collect(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str | None, str | None]:
        if self.stdin is not None:
            if input:
                self.stdin.write(input)
            self.stdin.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: dict[object, list[str]] = {s: [] for s in (self.stdout, self.stderr) if s is not None and not s.closed}
        selector = selectors.DefaultSelector()
        for stream in chunks:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            for key, _ in selector.select(left):
                data = os.read(key.fileobj.fileno(), 1 << 16)
                if data:
                    chunks[key.fileobj].append(data.decode("utf-8", errors="replace"))
                else:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        joined = {stream: "".join(parts) for stream, parts in chunks.items()}
        return joined.get(self.stdout), joined.get(self.stderr)

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> WarmProcess:
        return self

    def __exit__(self, *exc) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        self.wait()


def run(args: list[str], *, script: Path = RUNNER_MAIN, cwd: Path, env: dict[str, str], timeout: float,
        input: str | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """`subprocess.run(..., capture_output=True, text=True, timeout=...)` for a forked runner."""
    process = WarmProcess(args, script=script, cwd=cwd, env=env, stdin=subprocess.PIPE if input else None,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        out, err = process.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


if __name__ == "__main__":
    serve(sys.argv[1])
