"""The kill matrix: record, train, an eval sweep and a pipeline are killed (SIGKILL, SIGTERM or SIGINT) at
seeded random moments, then what each saved is checked and it is resumed to its target.

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
from conftest import TINY_ACT, run_dirs, run_runner, start_runner

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


# Every trial's outcome, for the summary the module prints at its end: what RELIABILITY.md quotes.
OUTCOMES: list[tuple[str, bool]] = []


@pytest.fixture(scope="module", autouse=True)
def matrix_summary():
    yield
    for stage in sorted({s for s, _ in OUTCOMES}):
        hits = [hit for s, hit in OUTCOMES if s == stage]
        print(f"\nMATRIX SUMMARY {stage}: {len(hits)} kills survived: {sum(hits)} hit a live run, "
              f"{len(hits) - sum(hits)} landed after it had ended")  # fmt: skip


def _kill_at(args: list[str], env: dict, fraction: float, signum: signal.Signals, full_s: float) -> tuple[int, bool]:
    """Start the stage, wait until its run exists, then `fraction` of a full run's duration, send `signum`;
    the exit code, and whether the kill hit a live run (the process still running and its run.json still
    `running`) rather than one that had already ended. (Before the run exists nothing is written: that case
    is the bad-input corpus's.)"""
    process = start_runner(*args, env=env)
    run_json = Path(_wait_for_run_line(process).split(" -> ", 1)[1].strip()) / "run.json"
    time.sleep(fraction * full_s)
    # A sweep is live while its process runs (its first job's run may have ended, the next one's not begun).
    live = process.poll() is None and ("-m" in args or json.loads(run_json.read_text())["status"] == "running")
    process.send_signal(signum)
    process.communicate(timeout=300)
    return process.returncode, live


def _wait_for_run_line(process) -> str:
    """The stage's first log line, `<stage> run <id> -> <run dir>`: its run exists from then on."""
    for line in process.stderr:
        if " run " in line and " -> " in line:
            return line
    raise AssertionError("the stage ended without starting its run")


def _run_info(root: Path, stage: str):
    from runner.core import outputs

    [run] = [r for r in outputs.list_runs(root) if r.stage == stage]
    return run


def _check_record_and_settle(run) -> None:
    assert run.status in ("interrupted", "failed", "stale", "succeeded"), run.status
    json.loads((run.path / "run.json").read_text())  # whole, valid JSON


def _full_run_seconds(args: list[str], root: Path) -> float:
    """How long the stage's run lasts, from its creation to its end, when nothing interrupts it: the scale
    of the kill points. A run's end is its run.json's (the process exits seconds later, torch tearing down:
    a kill then lands after the run); a sweep is live as long as its process."""
    from datetime import datetime

    process = start_runner(*args, env={"RUNNER_OUTPUTS": str(root)})
    run_json = Path(_wait_for_run_line(process).split(" -> ", 1)[1].strip()) / "run.json"
    start = time.monotonic()
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    if "-m" in args:
        return time.monotonic() - start
    record = json.loads(run_json.read_text())
    started, ended = (datetime.fromisoformat(record[k]) for k in ("started_at", "ended_at"))
    return (ended - started).total_seconds()


@pytest.fixture(scope="module")
def record_full_s(tmp_path_factory) -> float:
    return _full_run_seconds(RECORD, tmp_path_factory.mktemp("full") / "outputs")


@pytest.mark.parametrize("trial", _trials("record"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_record_killed_keeps_its_episodes_and_resumes_to_its_target(trial, tmp_path, record_full_s):
    from runner.lerobot_adapter.datasets import load_dataset

    _, signum, fraction = trial
    root = tmp_path / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    code, live = _kill_at(RECORD, env, fraction, signum, record_full_s)
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
    OUTCOMES.append(("record", live))
    print(f"MATRIX record {signum.name} at {fraction:.2f}: {_hit(live)}, exit {code}, status {run.status}, "
          f"{kept_before} episodes kept, resumed to 3")  # fmt: skip


def _hit(live: bool) -> str:
    return "hit a live run" if live else "landed after the run had ended"


def _recorded(tmp_path_factory, name: str) -> Path:
    """A fresh outputs root holding one 2-episode record run."""
    root = tmp_path_factory.mktemp(name) / "outputs"
    _full_run_seconds([*RECORD[:3], "episode.num_episodes=2"], root)
    return root


@pytest.fixture(scope="module")
def recorded_root(tmp_path_factory) -> Path:
    return _recorded(tmp_path_factory, "matrix-train")


@pytest.fixture(scope="module")
def train_full_s(recorded_root) -> float:
    return _full_run_seconds(TRAIN, recorded_root)


@pytest.mark.parametrize("trial", _trials("train"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_train_killed_keeps_only_whole_checkpoints_and_resumes_to_its_target(trial, recorded_root, train_full_s):
    from runner.lerobot_adapter.checkpoints import checkpoints
    from runner.lerobot_adapter.evaluation import load_policy

    _, signum, fraction = trial
    env = {"RUNNER_OUTPUTS": str(recorded_root)}
    before = {d.name for d in run_dirs(recorded_root)}
    code, live = _kill_at(TRAIN, env, fraction, signum, train_full_s)
    [run_dir] = [d for d in run_dirs(recorded_root) if d.name not in before]
    from runner.core import outputs

    run = next(r for r in outputs.list_runs(recorded_root) if r.id == run_dir.name)
    _check_record_and_settle(run)
    output = run_dir / "train"
    saved = checkpoints(output) if (output / "checkpoints").exists() else {}
    for folder in saved.values():  # a checkpoint on disk either loads or is not listed at all
        load_policy(folder / "pretrained_model", "cpu")
    last = output / "checkpoints" / "last"
    if last.exists():
        load_policy(last.resolve() / "pretrained_model", "cpu")
    resumed = run_runner("train", f"resume={run.id}", env=env, timeout=900)
    OUTCOMES.append(("train", live))
    if not saved:  # killed before its first checkpoint: nothing to resume, said so before anything is written
        assert resumed.returncode == 2 and "saved no checkpoint" in resumed.stderr, resumed.stderr[-3000:]
        assert not last.exists()
        print(f"MATRIX train {signum.name} at {fraction:.2f}: {_hit(live)}, exit {code}, status {run.status}, "
              "no checkpoint yet: resume refused (train anew)")  # fmt: skip
        return
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max(checkpoints(output)) == 8
    print(f"MATRIX train {signum.name} at {fraction:.2f}: {_hit(live)}, exit {code}, status {run.status}, "
          f"checkpoints {sorted(saved)} loaded, resumed to 8")  # fmt: skip


def _settled(root: Path, env: dict, timeout: float = 180) -> dict[str, str]:
    """Wait until no run is still running (a stage a killed parent had started stops on its own), then every
    run's status; every run.json must be whole JSON."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {r["id"]: r["status"] for r in json.loads(run_runner("runs", "--json", env=env).stdout)}
        if "running" not in statuses.values() or time.monotonic() > deadline:
            break
        time.sleep(1)
    for run_dir in run_dirs(root):
        json.loads((run_dir / "run.json").read_text())
    assert "running" not in statuses.values(), statuses
    assert set(statuses.values()) <= {"succeeded", "failed", "interrupted", "stale"}, statuses
    return statuses


EVAL_SWEEP = ["eval", "-m", "experiment=sim_demo", "eval.checkpoint=2,4", "eval.n_episodes=2", "eval.seeds=null",
              "eval.videos=0", "hydra/launcher=basic"]  # fmt: skip


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory) -> Path:
    """Its own root: the train trials add killed train runs, which the eval sweep must not pick as latest."""
    root = _recorded(tmp_path_factory, "matrix-eval")
    _full_run_seconds(TRAIN, root)
    return root


@pytest.fixture(scope="module")
def eval_sweep_full_s(trained_root) -> float:
    return _full_run_seconds(EVAL_SWEEP, trained_root)


@pytest.mark.parametrize("trial", _trials("eval-sweep"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_eval_sweep_killed_keeps_whole_job_results_and_resumes_only_the_rest(trial, trained_root, eval_sweep_full_s):
    from runner.core import outputs

    _, signum, fraction = trial
    env = {"RUNNER_OUTPUTS": str(trained_root)}
    before = {s.id for s in outputs.list_sweeps(trained_root)}
    code, live = _kill_at(EVAL_SWEEP, env, fraction, signum, eval_sweep_full_s)
    _settled(trained_root, env)
    [sweep] = [s for s in outputs.list_sweeps(trained_root) if s.id not in before]
    finished = [r for r in sweep.runs() if r.status == "succeeded"]
    for run in finished:  # a job's results are whole: its metrics and every episode row
        metrics = json.loads((run.path / "eval" / "metrics.json").read_text())
        assert metrics["n_episodes"] == 2 and len((run.path / "eval" / "episodes.csv").read_text().splitlines()) == 3
    resumed = run_runner("eval", f"sweep.resume={sweep.id}", env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = [r for r in outputs.resolve_sweep(trained_root, sweep.id).runs() if r.status == "succeeded"]
    assert sorted(r.record["metrics"]["checkpoint_step"] for r in done) == [2, 4]
    compared = run_runner("compare", sweep.id, "--json", env=env)
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert len(json.loads(compared.stdout)["rows"]) == 2
    OUTCOMES.append(("eval-sweep", live))
    print(f"MATRIX eval-sweep {signum.name} at {fraction:.2f}: {_hit(live)}, exit {code}, "
          f"{len(finished)} of 2 jobs kept, resumed {2 - len(finished)}, compared 2")  # fmt: skip


@pytest.fixture(scope="module")
def pipeline_full_s(tmp_path_factory) -> float:
    from test_pipeline import TINY

    return _full_run_seconds(["pipeline", *TINY], tmp_path_factory.mktemp("matrix-pipeline-full") / "outputs")


@pytest.mark.parametrize("trial", _trials("pipeline"), ids=lambda t: f"{t[0]}-{t[1].name}-{t[2]:.2f}")
def test_pipeline_killed_resumes_to_a_comparison_without_redoing_finished_stages(trial, tmp_path, pipeline_full_s):
    from test_pipeline import TINY

    _, signum, fraction = trial
    root = tmp_path / "outputs"
    env = {"RUNNER_OUTPUTS": str(root)}
    code, live = _kill_at(["pipeline", *TINY], env, fraction, signum, pipeline_full_s)
    statuses = _settled(root, env)
    [pipeline] = [r for r in run_dirs(root) if "-pipeline-" in r.name]
    resumed = run_runner("pipeline", f"resume={pipeline.name}", env=env, timeout=1800)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = {d.name: json.loads((d / "run.json").read_text()) for d in run_dirs(root)}
    assert records[pipeline.name]["status"] == "succeeded"
    for stage in ("record", "train", "compare"):  # each stage ran to success once; a killed one was resumed
        succeeded = [r for r in records.values() if r["stage"] == stage and r["status"] == "succeeded"]
        assert len(succeeded) == 1, (stage, [(r["id"], r["status"]) for r in records.values()])
    recorded = [r for r in records.values() if r["stage"] == "record"]
    assert len(recorded) == 1  # a recording is never started twice
    OUTCOMES.append(("pipeline", live))
    print(f"MATRIX pipeline {signum.name} at {fraction:.2f}: {_hit(live)}, exit {code}, children then "
          f"{sorted(s for i, s in statuses.items() if i != pipeline.name)}, resumed to a comparison")  # fmt: skip
