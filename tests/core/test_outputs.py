"""The outputs tree: unique run dirs under concurrency, run.json lifecycle, provenance, sweeps, references."""

import json
import signal
import subprocess
import time

import pytest
import yaml
from conftest import run_dirs, run_probe, run_runner, start_probe

from runner.core import layout, outputs, provenance

RUN_KEYS = {
    "id",
    "stage",
    "experiment",
    "status",
    "started_at",
    "ended_at",
    "argv",
    "overrides",
    "git",
    "packages",
    "host",
    "parents",
    "sweep",
    "artifacts",
}


def _record(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if process.poll() is not None:
            break
    raise AssertionError(f"never printed {text!r}; stderr: {process.stderr.read()}")


def test_a_run_writes_its_record_config_and_log(outputs_root):
    result = run_probe("experiment=sim_demo", "episode.reset_time_s=0", "task.instruction=stack the cubes")
    assert result.returncode == 0, result.stderr
    [run_dir] = run_dirs(outputs_root)
    assert run_dir.parent == outputs_root / "sim_demo"
    record = _record(run_dir)
    assert set(record) >= RUN_KEYS
    assert record["status"] == "succeeded" and record["ended_at"] >= record["started_at"]
    assert record["stage"] == "probe" and record["experiment"] == "sim_demo"
    assert record["overrides"] == ["experiment=sim_demo", "episode.reset_time_s=0", "task.instruction=stack the cubes"]
    assert record["packages"]["lerobot"] and record["packages"]["python"]
    assert record["host"]["hostname"] and record["host"]["cpu"]
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert record["host"]["profile"] == saved["host"]["name"], "which host profile's ports and cameras it used"
    assert record["sweep"] is None and record["parents"] == []
    assert "probe.txt" in record["artifacts"]
    assert (run_dir / "probe.txt").read_text() == "stack the cubes"
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        assert (run_dir / ".hydra" / name).is_file()
    assert "stack the cubes" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert "probe run" in (run_dir / "run.log").read_text()
    assert not list(run_dir.glob(".run.json.*")), "no temp file left behind"


def test_sixteen_runs_and_two_sweeps_started_together_stay_apart(outputs_root):
    """16 runs started in the same second, and two sweeps writing into the same experiment at once."""
    runs = [start_probe("episode.reset_time_s=0.2") for _ in range(16)]
    sweeps = [start_probe("-m", "episode.reset_time_s=0.2", f"task.instruction={s}1,{s}2,{s}3") for s in "ab"]
    for process in runs + sweeps:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    dirs = run_dirs(outputs_root)
    assert len(dirs) == 22 and len({d.name for d in dirs}) == 22
    records = [_record(d) for d in dirs]
    assert all(r["status"] == "succeeded" and r["ended_at"] for r in records)
    by_sweep: dict[str, list] = {}
    for record in records:
        if record["sweep"]:
            by_sweep.setdefault(record["sweep"]["id"], []).append(record)
    assert len(by_sweep) == 2
    for sweep_id, members in by_sweep.items():
        assert sorted(r["sweep"]["job"] for r in members) == [0, 1, 2]
        instructions = {(d / "probe.txt").read_text() for d in dirs if d.parent.name == sweep_id}
        assert len({i[0] for i in instructions}) == 1, "a sweep holds only its own jobs"
        assert json.loads((outputs_root / "default" / sweep_id / "sweep.json").read_text())["ended_at"]
    listed = json.loads(run_runner("runs", "--json").stdout)
    assert {r["id"] for r in listed} == {d.name for d in dirs}
    assert all(r["status"] == "succeeded" for r in listed)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_run_leaves_interrupted(outputs_root, signum, code):
    process = start_probe("episode.reset_time_s=60")
    _wait_for_line(process, "probe started")
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == code
    [run_dir] = run_dirs(outputs_root)
    record = _record(run_dir)
    assert record["status"] == "interrupted"
    assert record["ended_at"]


def test_killed_run_shows_as_stale(outputs_root):
    process = start_probe("episode.reset_time_s=60")
    _wait_for_line(process, "probe started")
    process.kill()
    process.wait(timeout=30)
    [run_dir] = run_dirs(outputs_root)
    assert _record(run_dir)["status"] == "running"
    [listed] = json.loads(run_runner("runs", "--json").stdout)
    assert listed["status"] == "stale"
    assert json.loads(run_runner("runs", "--json", "--status", "stale").stdout)[0]["id"] == run_dir.name


def test_failed_run_records_the_error(outputs_root):
    result = run_probe("task.name=explode", "episode.reset_time_s=0")
    assert result.returncode == 1
    assert "failed with RuntimeError" in result.stderr
    [run_dir] = run_dirs(outputs_root)
    record = _record(run_dir)
    assert record["status"] == "failed"
    assert record["error"] == {"type": "RuntimeError", "message": "the probe was asked to fail"}
    assert "Traceback" in (run_dir / "run.log").read_text()


def test_multirun_is_one_sweep(outputs_root):
    result = run_probe("-m", "experiment=sim_demo", "episode.reset_time_s=0,0.01,0.02")
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(outputs_root)
    assert len(dirs) == 3
    [sweep_dir] = {d.parent for d in dirs}
    assert sweep_dir.parent == outputs_root / "sim_demo"
    sweep = json.loads((sweep_dir / layout.SWEEP_JSON).read_text())
    assert sweep["id"] == sweep_dir.name and sweep["ended_at"]
    records = [_record(d) for d in dirs]
    assert {r["sweep"]["id"] for r in records} == {sweep_dir.name}
    assert sorted(r["sweep"]["job"] for r in records) == [0, 1, 2]


def test_a_sweep_set_in_a_config_file_runs_as_a_sweep_without_m(outputs_root, tmp_path):
    """Hydra's `hydra.mode: MULTIRUN` in an experiment file: runner reads the mode from -m without composing twice,
    and still honours the file (the run's composition finds it and the command runs as a sweep)."""
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "both_waits.yaml").write_text(
        "# @package _global_\nhydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      episode.reset_time_s: 0,0.01\n"
    )
    result = run_probe(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=both_waits")
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(outputs_root)
    assert len(dirs) == 2 and len({d.parent for d in dirs}) == 1
    assert sorted(_record(d)["sweep"]["job"] for d in dirs) == [0, 1]
    result = run_probe("episode.reset_time_s=0")
    assert result.returncode == 0, result.stderr
    assert len(run_dirs(outputs_root)) == 3, "a plain run stays one run"


def test_multirun_with_the_joblib_launcher(outputs_root):
    result = run_probe("-m", "hydra/launcher=joblib", "episode.reset_time_s=0,0.01")
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(outputs_root)
    assert len(dirs) == 2 and len({d.parent for d in dirs}) == 1
    assert all(_record(d)["status"] == "succeeded" for d in dirs)


def test_git_provenance_of_a_dirty_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    state, diff = provenance.git_state(repo)
    assert state["dirty"] is False and len(state["commit"]) == 40 and diff is None
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").write_text("x")
    state, diff = provenance.git_state(repo)
    assert state["dirty"] is True and state["diff_file"] == "git.diff"
    assert "+two" in diff and "new.txt" in diff


def test_outside_a_git_checkout_provenance_says_so(tmp_path):
    state, diff = provenance.git_state(tmp_path)
    assert state["commit"] is None and "not a git checkout" in state["note"] and diff is None


def _fake_run(root, experiment, run_id, stage, status="succeeded", sweep=None):
    parent = root / experiment / (sweep or "")
    run_dir = parent / run_id
    run_dir.mkdir(parents=True)
    record = {
        "id": run_id,
        "stage": stage,
        "experiment": experiment,
        "status": status,
        "parents": [],
        "started_at": "2026-11-24T15:30:12.483+00:00",
        "ended_at": "2026-11-24T15:31:12.483+00:00",
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def test_references_resolve_by_id_prefix_and_latest(tmp_path):
    _fake_run(tmp_path, "a", "20261124-153012-483-record-7f3a", "record")
    _fake_run(tmp_path, "a", "20261124-153512-001-train-aaaa", "train")
    _fake_run(tmp_path, "b", "20261124-160000-000-record-bbbb", "record", sweep="20261124-155959-000-record-sweep-cccc")
    assert outputs.resolve_run(tmp_path, "latest").id == "20261124-160000-000-record-bbbb"
    assert outputs.resolve_run(tmp_path, "latest:train").id == "20261124-153512-001-train-aaaa"
    assert outputs.resolve_run(tmp_path, "latest", stage="train").id == "20261124-153512-001-train-aaaa"
    assert outputs.resolve_run(tmp_path, "20261124-1535").stage == "train"
    assert outputs.resolve_run(tmp_path, "20261124-153012-483-record-7f3a").experiment == "a"
    with pytest.raises(outputs.RunReferenceError, match="matches 3 runs"):
        outputs.resolve_run(tmp_path, "2026")
    with pytest.raises(outputs.RunReferenceError, match="Nearest: 20261124-153012-483-record-7f3a"):
        outputs.resolve_run(tmp_path, "20261124-153012-483-record-7f3b")
    with pytest.raises(outputs.RunReferenceError, match="no eval run"):
        outputs.resolve_run(tmp_path, "latest:eval")


def test_runs_filters_and_show(tmp_path):
    _fake_run(tmp_path, "a", "20261124-153012-483-record-7f3a", "record")
    train_dir = _fake_run(tmp_path, "a", "20261124-153512-001-train-aaaa", "train", status="failed")
    record = json.loads((train_dir / "run.json").read_text())
    record["checkpoints"] = [{"step": 10, "size_mb": 12.0, "deleted": True}, {"step": 20, "size_mb": 12.0}]
    (train_dir / "run.json").write_text(json.dumps(record))
    _fake_run(tmp_path, "b", "20261124-160000-000-record-bbbb", "record")
    listed = json.loads(run_runner("runs", "--json", "--outputs", str(tmp_path)).stdout)
    assert [r["id"][-4:] for r in listed] == ["bbbb", "aaaa", "7f3a"], "newest first"
    only = json.loads(
        run_runner("runs", "--json", "--outputs", str(tmp_path), "--stage", "record", "--limit", "1").stdout
    )
    assert [r["id"][-4:] for r in only] == ["bbbb"]
    failed = json.loads(run_runner("runs", "--json", "--outputs", str(tmp_path), "--status", "failed").stdout)
    assert [r["stage"] for r in failed] == ["train"]
    table = run_runner("runs", "--outputs", str(tmp_path), "--experiment", "a")
    assert "7f3a" in table.stdout and "bbbb" not in table.stdout
    shown = run_runner("runs", "show", "latest:train", "--outputs", str(tmp_path))
    assert shown.returncode == 0 and "20261124-153512-001-train-aaaa" in shown.stdout
    assert "10 (12 MB, deleted), 20 (12 MB)" in shown.stdout
    missing = run_runner("runs", "show", "nope", "--outputs", str(tmp_path))
    assert missing.returncode == 1 and "matches no run" in missing.stderr


def test_write_json_atomic_keeps_the_old_file_when_serialising_fails(tmp_path):
    target = tmp_path / "run.json"
    outputs.write_json_atomic(target, {"status": "running"})
    with pytest.raises(TypeError):
        outputs.write_json_atomic(target, {"status": object.__new__(type("Unserialisable", (), {"__str__": None}))})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
