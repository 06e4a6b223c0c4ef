"""`runner pipeline`: record -> train -> eval sweep -> compare, linked by parents; resume skips what succeeded."""

import json
import signal

import pytest
from conftest import run_dirs, run_runner, start_runner, wait_for_log

TINY = [
    "experiment=sim_demo", "cameras=sim_side_small", "episode.num_episodes=2", "episode.episode_time_s=1.5",
    "train.steps=20", "train.save_freq=10", "train.batch_size=2", "train.num_workers=0", "train.log_freq=5",
    "policy.dim_model=32", "policy.dim_feedforward=64", "policy.n_encoder_layers=1",
    "policy.n_vae_encoder_layers=1", "policy.chunk_size=5", "policy.n_action_steps=5", "eval.n_episodes=1",
    "eval.videos=0", "pipeline.launcher=basic",
]  # fmt: skip


def _records(root, stage):
    return [json.loads((d / "run.json").read_text()) for d in run_dirs(root) if f"-{stage}-" in d.name]


@pytest.mark.slow
def test_pipeline_killed_during_training_resumes_without_recording_again(outputs_root):
    process = start_runner("pipeline", *TINY)
    wait_for_log(process, "step 5/20")  # training has started
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode == 143
    [pipeline] = _records(outputs_root, "pipeline")
    assert pipeline["status"] == "interrupted"
    [train] = _records(outputs_root, "train")
    assert train["status"] == "interrupted" and train["pipeline"] == pipeline["id"]

    result = run_runner("pipeline", f"resume={pipeline['id']}", timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "succeeded before: skipped" in result.stderr
    [record] = _records(outputs_root, "record")  # recorded once
    trains = [t for t in _records(outputs_root, "train") if t["status"] == "succeeded"]
    assert len(trains) == 1 and trains[0]["parents"] == [record["id"]]
    evals = _records(outputs_root, "eval")
    assert len(evals) == 2 and all(e["parents"] == [trains[0]["id"]] for e in evals)
    assert {e["metrics"]["checkpoint_step"] for e in evals} == {10, 20}
    [compare] = _records(outputs_root, "compare")
    assert sorted(compare["parents"]) == sorted(e["id"] for e in evals)
    [pipeline] = _records(outputs_root, "pipeline")
    assert pipeline["status"] == "succeeded" and len(pipeline["resumes"]) == 1
    children = pipeline["children"]
    assert children["record"]["run"] == record["id"] and children["train"]["run"] == trains[0]["id"]
    assert sorted(children["eval"]["runs"]) == sorted(e["id"] for e in evals)
    assert children["compare"]["run"] == compare["id"]
    assert all(r["pipeline"] == pipeline["id"] for r in [record, *trains, *evals, compare])
    assert "eval runs compared" in result.stdout and "pipeline runs:" in result.stdout

    # Resumed once more (a kill that landed after it ended): nothing is redone, its comparison included.
    before = set(run_dirs(outputs_root))
    again = run_runner("pipeline", f"resume={pipeline['id']}", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"compare run {compare['id']} succeeded before: skipped" in again.stderr
    assert set(run_dirs(outputs_root)) == before

    # The experiment's report links every run of the pipeline, the interrupted train run included.
    report = run_runner("report", "experiment", "sim_demo", "--json")
    assert report.returncode == 0, report.stderr[-3000:]
    numbers = json.loads(report.stdout)
    every = [pipeline, record, *_records(outputs_root, "train"), *evals, compare]
    assert set(numbers["runs"]) == {r["id"] for r in every}
    assert [s["rows"] for s in numbers["sweeps"]] == [2] and numbers["train"][0]["final_loss"] is not None


@pytest.mark.slow
def test_pipeline_dataset_run_skips_recording(outputs_root):
    recorded = run_runner(
        "record", "experiment=sim_demo", "cameras=sim_side_small", "episode.num_episodes=1", "episode.episode_time_s=1"
    )
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    [record] = _records(outputs_root, "record")
    result = run_runner(
        "pipeline", *TINY, "train.steps=2", "train.save_freq=2", f"pipeline.dataset_run={record['id']}", timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(_records(outputs_root, "record")) == 1
    [pipeline] = _records(outputs_root, "pipeline")
    assert pipeline["parents"] == [record["id"]] and pipeline["children"]["record"]["given"] is True
    [train] = _records(outputs_root, "train")
    assert train["parents"] == [record["id"]]


def test_pipeline_rejects_an_unknown_dataset_run_before_starting(outputs_root):
    result = run_runner("pipeline", "experiment=sim_demo", "pipeline.dataset_run=nope")
    assert result.returncode == 2 and "pipeline.dataset_run" in result.stderr
    assert not run_dirs(outputs_root)


@pytest.mark.slow
def test_the_demo_preset_at_a_reduced_size_compares_its_checkpoints_on_a_quiet_console(outputs_root):
    """`make demo`'s preset, cut to CI size: every stage runs with the preset's cameras, policy and schedule
    shape, the comparison is produced, and the console shows runner's lines, not LeRobot's INFO logging."""
    result = run_runner(
        "pipeline", "experiment=demo", "episode.num_episodes=2", "train.steps=4", "train.save_freq=2",
        "train.log_freq=2", "eval.n_episodes=2", "episode.episode_time_s=3", timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    evals = _records(outputs_root, "eval")
    assert sorted(e["metrics"]["checkpoint_step"] for e in evals) == [2, 4]
    assert all(e["metrics"]["n_episodes"] == 2 for e in evals)
    [compare] = _records(outputs_root, "compare")
    [table] = outputs_root.rglob("comparison.md")
    assert table.parent.name == compare["id"] and table.read_text().count("\n|") >= 3
    assert "eval runs compared" in result.stdout and "vs best" in result.stdout
    for noise in ("Using video codec", "pretrained_backbone_weights", "Loading weights", "updt_s", "Joblib.Parallel"):
        assert noise not in result.stderr + result.stdout, noise  # LeRobot's INFO lines, joblib's config
    [train] = _records(outputs_root, "train")
    run_log = (outputs_root / "demo" / train["id"] / "run.log").read_text()
    assert "updt_s" in run_log, "LeRobot's own lines are kept in run.log"
    [record] = _records(outputs_root, "record")
    assert record["sim_world"] == {"render": "fast"}
