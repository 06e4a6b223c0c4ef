import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import warm_start

import runner.sim  # noqa: F401  (picks MuJoCo's GL backend before any test imports mujoco)

REPO = Path(__file__).resolve().parent.parent
SERVED_AT = re.compile(r" on (\S+):(\d+)")  # `runner serve: ... on HOST:PORT`
PROBE = REPO / "tests" / "probe_stage.py"

os.environ["HF_HUB_OFFLINE"] = "1"
# A test's SIGINT is a Ctrl-C. A suite started in the background by a non-interactive shell (nohup, `&`, some
# CI runners) inherits SIGINT ignored, every runner it starts would too, and Python keeps an ignored SIGINT
# ignored: the kill matrix's SIGINT kills were then no-ops. A handled signal is reset to the default on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Every runner the suite starts carries these, so every stage's files can be scanned for them
# (test_secrets.py): none may ever be written.
SUITE_SECRETS = {"HF_TOKEN": "hf_suiteSecretToken_5b27c1e9", "WANDB_API_KEY": "suiteWandbKey_0e8d4417a2c6"}
os.environ.update(SUITE_SECRETS)
# A policy small enough to train in seconds on a CPU.
TINY_ACT = ["policy.dim_model=32", "policy.dim_feedforward=64", "policy.n_encoder_layers=1",
            "policy.n_vae_encoder_layers=1", "policy.chunk_size=5", "policy.n_action_steps=5"]  # fmt: skip


@pytest.fixture
def outputs_root(tmp_path, monkeypatch) -> Path:
    """An empty outputs root for this test, used by every runner process the test starts."""
    root = tmp_path / "outputs"
    monkeypatch.setenv("RUNNER_OUTPUTS", str(root))
    return root


def run_runner(*args: str, cwd: Path = REPO, timeout: float = 120, env: dict | None = None):
    """`runner ARGS` in a process of its own (as `python -m runner`; a fork of tests/warm_start.py's server
    where that is the same); a variable that ``env`` sets to None is unset."""
    environment = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    if warm_start.eligible(environment, {}):
        return warm_start.run(list(args), cwd=cwd, env=environment, timeout=timeout)
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment)  # fmt: skip


def start_server(
    outputs: Path, *overrides: str, env: dict | None = None, port: int = 0
) -> tuple[subprocess.Popen, str, int]:
    """`runner serve` of the sim_demo experiment on ``port`` (0: a free one), once it printed the address it bound."""
    process = start_runner("serve", "experiment=sim_demo", f"serve.port={port}", *overrides,
                           env={"RUNNER_OUTPUTS": str(outputs), **(env or {})})  # fmt: skip
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if line.startswith("runner serve:"):
            host, port = SERVED_AT.search(line).groups()
            return process, host, int(port)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("runner serve did not start:\n" + "".join(lines)[-3000:])


def stop_server(process: subprocess.Popen) -> str:
    """SIGTERM: the server ends its run as succeeded; its log."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]
    return err


def run_probe(*args: str, cwd: Path = REPO, timeout: float = 120, env: dict | None = None):
    """The test-only `probe` stage through the real stage machinery (see probe_stage.py)."""
    environment = {**os.environ, **(env or {})}
    if warm_start.eligible(environment, {}):
        return warm_start.run(list(args), script=PROBE, cwd=cwd, env=environment, timeout=timeout)
    return subprocess.run([sys.executable, str(PROBE), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment)  # fmt: skip


def start_runner(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """`runner ARGS` in the background, its log (stderr) readable line by line."""
    environment = {**os.environ, **(env or {})}
    if warm_start.eligible(environment, popen):
        return warm_start.WarmProcess(list(args), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=environment, **popen)  # fmt: skip


def wait_for_log(process: subprocess.Popen, *words: str) -> None:
    """Read the process's log until a line holds every word."""
    for line in process.stderr:
        if all(word in line for word in words):
            return
    raise AssertionError(f"the process ended without logging {words}")


def wait_until(condition, what: str, timeout: float = 120, process: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds: synchronise on what a test waits for, not on a sleep. Fails when the
    time is up or ``process`` ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)


def start_probe(*args: str, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, **(env or {})}
    if warm_start.eligible(environment, {}):
        return warm_start.WarmProcess(list(args), script=PROBE, env=environment, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)  # fmt: skip
    return subprocess.Popen([sys.executable, str(PROBE), *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment)  # fmt: skip


def run_dirs(root: Path) -> list[Path]:
    """Every directory holding a run.json under an outputs root."""
    return sorted(p.parent for p in root.rglob("run.json"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """An outputs root with a sim_demo record run (2 short episodes) and a tiny ACT train run with checkpoints
    2 and 4; shared by every test that evaluates (tests add their runs beside them, never change them)."""
    root = tmp_path_factory.mktemp("trained") / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    result = run_runner("record", "experiment=sim_demo", "episode.num_episodes=2", "episode.episode_time_s=2",
                        env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_runner("train", "experiment=sim_demo", "train.steps=4", "train.save_freq=2", "train.batch_size=2",
                        "train.num_workers=0", *TINY_ACT, env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return root


# --- a Hub for the tests (tests/hub/fake_hub.py): the suite's HF_TOKEN is HUB_USER's, who may also write to HUB_ORG
HUB_USER, HUB_ORG = "suite-user", "suite-lab"
OTHER_TOKEN = "hf_otherUsersToken_81d0b3a7"  # a user who owns nothing the tests push to
READ_ONLY_TOKEN = "hf_readOnlyToken_4e62c9f1"


@dataclass
class FakeHub:
    endpoint: str
    root: Path
    process: subprocess.Popen

    def env(self, home: Path) -> dict[str, str]:
        """A runner's environment for this Hub: its endpoint, online, and a Hugging Face cache of its own."""
        return {"HF_ENDPOINT": self.endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(home),
                "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def start_fake_hub(root: Path, *flags: str) -> FakeHub:
    """tests/hub/fake_hub.py on 127.0.0.1 (a free port), state under ``root``; returns once it listens."""
    users = {os.environ["HF_TOKEN"]: HUB_USER, OTHER_TOKEN: "someone", READ_ONLY_TOKEN: "reader"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "hub" / "fake_hub.py"), "--root", str(root), "--users",
         json.dumps(users), "--orgs", json.dumps({HUB_USER: [HUB_ORG]}), "--read-only", "reader", *flags],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    assert line.startswith("listening on "), f"the test Hub did not start: {line!r}"
    return FakeHub(line.split()[-1], root, process)


# A dataset repo on the test Hub holding another robot's data (meta/info.json only): a push over it is refused.
OTHER_ROBOT_DATASET = f"{HUB_USER}/other_robot"
_SEED = """
import json, pathlib, sys
from huggingface_hub import HfApi
api = HfApi()
folder = pathlib.Path(sys.argv[1])
(folder / "meta").mkdir(parents=True)
features = {"observation.state": {"dtype": "float32", "shape": [3]}, "action": {"dtype": "float32", "shape": [3]}}
(folder / "meta" / "info.json").write_text(json.dumps({"robot_type": "koch", "fps": 50, "features": features}))
api.create_repo(sys.argv[2], repo_type="dataset")
api.upload_folder(repo_id=sys.argv[2], repo_type="dataset", folder_path=folder)
api.create_tag(sys.argv[2], tag="v3.0", repo_type="dataset")
"""


@pytest.fixture(scope="session")
def fake_hub(tmp_path_factory) -> FakeHub:
    """One test Hub per test process, seeded with OTHER_ROBOT_DATASET."""
    base = tmp_path_factory.mktemp("hub")
    hub = start_fake_hub(base / "store")
    env = {**os.environ, **hub.env(base / "hf_home")}
    seeded = subprocess.run([sys.executable, "-c", _SEED, str(base / "seed"), OTHER_ROBOT_DATASET], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    yield hub
    hub.stop()


def pytest_sessionfinish(session, exitstatus):
    warm_start.SERVERS.stop()
