"""`runner dataset drop|retask|split|merge` on a real recording: LeRobot loads every result, runner's episode
table goes with it, the sources stay as they were, and `runner train` trains on a derived dataset."""

import csv
import hashlib
import json
from pathlib import Path

import pytest
from conftest import TINY_ACT, run_dirs, run_runner

pytestmark = pytest.mark.slow

SCENARIOS = ("task.scenarios=[{name: near, instruction: pick up the red cube, num_episodes: 2},"
             "{name: far, instruction: pick up the far red cube, num_episodes: 1}]")  # fmt: skip


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("curation") / "outputs"
    result = run_runner("record", "experiment=sim_demo", SCENARIOS, "episode.num_episodes=3",
                        "episode.episode_time_s=1", env={"RUNNER_OUTPUTS": str(root)}, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_dirs(root)
    return root, run


def _dataset(root: Path, capsys, *args: str) -> list[Path]:
    """`runner dataset ARGS` in-process; the runs it made."""
    import os

    from runner.cli import main

    os.environ["RUNNER_OUTPUTS"] = str(root)
    before = set(run_dirs(root))
    code = main(["dataset", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    return sorted(set(run_dirs(root)) - before)


def _table(run: Path) -> list[dict]:
    with open(run / "dataset" / "meta" / "runner_episodes.csv") as f:
        return list(csv.DictReader(f))


def _load(run: Path):
    from lerobot.datasets import LeRobotDataset

    return LeRobotDataset(f"local/{run.name}", root=run / "dataset", video_backend="pyav")


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_drop_retask_split_merge_make_datasets_lerobot_loads_and_runner_trains_on(recording, capsys):
    root, source = recording
    untouched = _digest(source)

    [dropped] = _dataset(root, capsys, "drop", source.name, "--scenario", "far")
    data = _load(dropped)
    assert data.num_episodes == 2 and {r["scenario"] for r in _table(dropped)} == {"near"}
    assert [(r["source_run"], r["source_episode"]) for r in _table(dropped)] == [(source.name, "0"), (source.name, "1")]
    record = json.loads((dropped / "run.json").read_text())
    assert record["stage"] == "dataset" and record["status"] == "succeeded" and record["parents"] == [source.name]
    assert record["dataset_operation"]["operation"] == "drop" and record["dataset_operation"]["dropped"] == [2]
    assert (dropped / "dataset" / "meta" / "runner_sim_world.json").exists(), "the simulated look goes with it"

    [retasked] = _dataset(root, capsys, "retask", source.name, "--scenario", "far=pick up the cube by the edge")
    data = _load(retasked)
    tasks = [data[int(data.meta.episodes["dataset_from_index"][e])]["task"] for e in range(3)]
    assert tasks == ["pick up the red cube", "pick up the red cube", "pick up the cube by the edge"]
    assert [r["instruction"] for r in _table(retasked)][2] == "pick up the cube by the edge"

    train_part, held_out = _dataset(root, capsys, "split", source.name, "--held-out-episodes", "1")
    parts = {json.loads((r / "run.json").read_text())["dataset_operation"]["part"]: r for r in (train_part, held_out)}
    assert _load(parts["train"]).num_episodes == 2 and _load(parts["held_out"]).num_episodes == 1
    assert [r["source_episode"] for r in _table(parts["held_out"])] == ["1"]

    [merged] = _dataset(root, capsys, "merge", source.name, dropped.name)
    assert _load(merged).num_episodes == 5
    assert json.loads((merged / "run.json").read_text())["parents"] == [source.name, dropped.name]
    assert [r["dataset_episode"] for r in _table(merged)] == ["0", "1", "2", "3", "4"]
    assert _digest(source) == untouched, "the source recording is never modified"

    trained = run_runner("train", "experiment=sim_demo", f"dataset_run={merged.name}", "train.scenarios=[near]",
                         "train.steps=2", "train.save_freq=2", "train.batch_size=2", "train.num_workers=0",
                         *TINY_ACT, env={"RUNNER_OUTPUTS": str(root)}, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    [train] = [d for d in run_dirs(root) if "-train-" in d.name]
    lineage = json.loads((train / "run.json").read_text())
    assert merged.name in lineage["parents"]
    assert lineage["lineage"]["episodes"] == [0, 1, 3, 4], "train.scenarios reads the merged episode table"
