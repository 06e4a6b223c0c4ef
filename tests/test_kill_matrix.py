"""The kill matrix: a stage is killed (SIGKILL, SIGTERM or SIGINT) at seeded random moments, then what it
saved is checked and it is resumed to its target.

Not part of `make test` (marker `matrix`; the fast suite kills each stage at one point instead: see
test_record, test_train, test_eval, test_pipeline). Run it with `make matrix`; RUNNER_MATRIX_POINTS sets the
kill points per stage (default 3) and RUNNER_MATRIX_SEED the seed. Each trial prints one line; the figures
in RELIABILITY.md come from these lines.
"""

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import TINY_ACT, run_dirs, run_runner, start_runner, wait_for_log

pytestmark = pytest.mark.matrix

POINTS = int(os.environ.get("RUNNER_MATRIX_POINTS", "3"))
SEED = int(os.environ.get("RUNNER_MATRIX_SEED", "2026"))
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
RECORD = ["record", "experiment=sim_demo", "episode.realtime=false", "episode.num_episodes=3"]
TRAIN = ["train", "experiment=sim_demo", "train.num_workers=0", "train.batch_size=2", "train.log_freq=2",
         "train.steps=8", "train.save_freq=2", *TINY_ACT]  # fmt: skip


def _trials(stage: str) -> list[tuple[int, signal.Signals, float]]:
    rng = random.Random(f"{SEED}-{stage}")
    return [(i, rng.choice(SIGNALS), rng.uniform(0.1, 0.9)) for i in range(POINTS)]


def _kill_at(args: list[str], env: dict, fraction: float, signum: signal.Signals, full_s: float) -> int:
    """Start the stage, wait until its run exists, then `fraction` of a full run's duration, send `signum`;
    the exit code. (Before the run exists nothing is written: that case is the bad-input corpus's.)"""
    process = start_runner(*args, env=env)
    wait_for_log(process, " run ", " -> ")
    time.sleep(fraction * full_s)
    process.send_signal(signum)
    process.communicate(timeout=300)
    return process.returncode


def _run_info(root: Path, stage: str):
    from runner import outputs

    [run] = [r for r in outputs.list_runs(root) if r.stage == stage]
    return run


def _check_record_and_settle(run) -> None:
    assert run.status in ("interrupted", "failed", "stale", "succeeded"), run.status
    json.loads((run.path / "run.json").read_text())  # whole, valid JSON


def _full_run_seconds(args: list[str], root: Path) -> float:
    """How long the stage's run lasts, from its creation to its end, when nothing interrupts it: the scale
    of the kill points."""
    process = start_runner(*args, env={"RUNNER_OUTPUTS": str(root)})
    wait_for_log(process, " run ", " -> ")
    start = time.monotonic()
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    return time.monotonic() - start


@pytest.fixture(scope="module")
def record_full_s(tmp_path_factory) -> float:
    return _full_run_seconds(RECORD, tmp_path_factory.mktemp("full") / "outputs")


@pytest.mark.parametrize("trial", _trials("record"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_record_killed_keeps_its_episodes_and_resumes_to_its_target(trial, tmp_path, record_full_s):
    from runner.lerobot_adapter.recording import load_dataset

    _, signum, fraction = trial
    root = tmp_path / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    code = _kill_at(RECORD, env, fraction, signum, record_full_s)
    if not run_dirs(root):
        print(f"MATRIX record {signum.name} at {fraction:.2f}: killed before its run started (exit {code})")
        return
    run = _run_info(root, "record")
    _check_record_and_settle(run)
    dataset = run.path / "dataset"
    info = dataset / "meta" / "info.json"
    kept_before = json.loads(info.read_text())["total_episodes"] if info.exists() else 0
    if kept_before:  # a dataset with no finalized episode has nothing to load yet
        frames = load_dataset(dataset, "local/sim_demo")
        for episode in range(kept_before):  # every finalized episode decodes, first and last frame
            index = frames.meta.episodes["dataset_from_index"][episode]
            last = frames.meta.episodes["dataset_to_index"][episode] - 1
            assert frames[index]["observation.images.side"].shape[0] == 3 and frames[last] is not None
    resumed = run_runner("record", f"resume={run.id}", env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = load_dataset(dataset, "local/sim_demo")
    assert final.meta.total_episodes == 3
    listed = {r["id"]: r["status"] for r in json.loads(run_runner("runs", "--json", env=env).stdout)}
    assert listed[run.id] == "succeeded"
    print(f"MATRIX record {signum.name} at {fraction:.2f}: status {run.status}, {kept_before} episodes kept, "
          f"resumed to 3")  # fmt: skip


@pytest.fixture(scope="module")
def recorded_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matrix-train") / "outputs"
    _full_run_seconds([*RECORD[:3], "episode.num_episodes=2"], root)
    return root


@pytest.fixture(scope="module")
def train_full_s(recorded_root) -> float:
    return _full_run_seconds(TRAIN, recorded_root)


@pytest.mark.parametrize("trial", _trials("train"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_train_killed_keeps_only_whole_checkpoints_and_resumes_to_its_target(trial, recorded_root, train_full_s):
    from runner.lerobot_adapter.checkpoints import checkpoints
    from runner.lerobot_adapter.training import load_policy

    _, signum, fraction = trial
    env = {"RUNNER_OUTPUTS": str(recorded_root)}
    before = {d.name for d in run_dirs(recorded_root)}
    code = _kill_at(TRAIN, env, fraction, signum, train_full_s)
    new = [d for d in run_dirs(recorded_root) if d.name not in before]
    if not new:
        print(f"MATRIX train {signum.name} at {fraction:.2f}: killed before its run started (exit {code})")
        return
    [run_dir] = new
    from runner import outputs

    run = next(r for r in outputs.list_runs(recorded_root) if r.id == run_dir.name)
    _check_record_and_settle(run)
    output = run_dir / "train"
    saved = checkpoints(output) if (output / "checkpoints").exists() else {}
    for folder in saved.values():  # a checkpoint on disk either loads or is not listed at all
        load_policy(folder)
    last = output / "checkpoints" / "last"
    if last.exists():
        load_policy(last.resolve())
    if not saved:
        print(f"MATRIX train {signum.name} at {fraction:.2f}: status {run.status}, no checkpoint yet (not resumable)")
        return
    resumed = run_runner("train", f"resume={run.id}", env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max(checkpoints(output)) == 8
    print(f"MATRIX train {signum.name} at {fraction:.2f}: status {run.status}, checkpoints {sorted(saved)} "
          f"loaded, resumed to 8")  # fmt: skip
