"""The Hub, end to end against the test Hub (tests/hub/fake_hub.py): a recording pushed and loaded back by plain
huggingface_hub plus LeRobotDataset, a training on a Hub dataset plus a local run, checkpoints pushed as step
tags and evaluated by revision (online, then offline from the cache), a push killed mid-upload and finished."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import HUB_USER, SUITE_SECRETS, TINY_ACT, run_dirs, run_runner, start_fake_hub

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hub")]

RECORD = ["record", "experiment=sim_demo", "episode.num_episodes=2", "episode.episode_time_s=2",
          "episode.realtime=false"]  # fmt: skip
DATASET = f"{HUB_USER}/pick"
POLICY = f"{HUB_USER}/act_pick"
# What someone else's code does with a pushed dataset: download the repo at LeRobot's version tag with plain
# huggingface_hub, into a cache of its own, and open it with LeRobotDataset.
LOAD_FROM_HUB = """
import json, pathlib, sys
from huggingface_hub import snapshot_download
from lerobot.datasets import LeRobotDataset
folder = pathlib.Path(snapshot_download(sys.argv[1], repo_type="dataset", revision="v3.0", cache_dir=sys.argv[2]))
dataset = LeRobotDataset(sys.argv[1], root=folder, video_backend="pyav")
frame = dataset[len(dataset) - 1]
print(json.dumps({"episodes": dataset.num_episodes, "frames": len(dataset),
                  "videos": sorted(str(p.relative_to(folder)) for p in folder.rglob("*.mp4")),
                  "image_keys": sorted(k for k in frame if k.startswith("observation.images."))}))
"""


def _load_from_hub(hub_env: dict, repo_id: str, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", LOAD_FROM_HUB, repo_id, str(cache)], capture_output=True, text=True,
                          env={**os.environ, **hub_env}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _runs(root: Path, stage: str) -> list[Path]:
    return [d for d in run_dirs(root) if _run_json(d)["stage"] == stage]


@pytest.fixture(scope="module")
def pushed(fake_hub, tmp_path_factory) -> SimpleNamespace:
    """A record run of 2 simulated episodes that pushed its dataset to the test Hub when it ended."""
    base = tmp_path_factory.mktemp("hub_runs")
    env = {"RUNNER_OUTPUTS": str(base / "outputs"), **fake_hub.env(base / "hf_home")}
    result = run_runner(*RECORD, "dataset.push_to_hub=true", f"dataset.hub_repo_id={DATASET}", env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [record] = _runs(base / "outputs", "record")
    return SimpleNamespace(base=base, root=base / "outputs", env=env, record=record, hub=fake_hub)


def test_a_pushed_recording_loads_in_lerobot_from_a_plain_download(pushed):
    record = _run_json(pushed.record)
    [entry] = record["pushes"]
    assert entry["status"] == "succeeded" and entry["repo_id"] == DATASET and entry["revision"] == "v3.0"
    assert len(entry["commit"]) == 40 and entry["url"] == f"{pushed.hub.endpoint}/datasets/{DATASET}"
    [push_run] = _runs(pushed.root, "push")
    push_record = _run_json(push_run)
    assert push_record["status"] == "succeeded" and push_record["parents"] == [record["id"]]
    assert push_record["hub"]["commit"] == entry["commit"] and entry["run"] == push_record["id"]

    local = json.loads((pushed.record / "dataset" / "meta" / "info.json").read_text())
    loaded = _load_from_hub(pushed.env, DATASET, pushed.base / "someone_elses_cache")
    assert loaded["episodes"] == 2 == local["total_episodes"] and loaded["frames"] == local["total_frames"]
    local_videos = sorted(str(p.relative_to(pushed.record / "dataset")) for p in pushed.record.rglob("*.mp4"))
    assert loaded["videos"] == local_videos and len(local_videos) >= 2
    assert loaded["image_keys"] == sorted(k for k in local["features"] if k.startswith("observation.images."))

    shown = run_runner("runs", "show", record["id"], env=pushed.env)
    assert shown.returncode == 0 and "pushes" in shown.stdout and entry["commit"] in shown.stdout


def test_train_on_the_hub_and_local_then_evaluate_pushed_checkpoints_by_revision(pushed):
    record = _run_json(pushed.record)
    hub_commit = record["pushes"][0]["commit"]
    trained = run_runner(
        "train", "experiment=sim_demo", f"dataset_run=[hf:{DATASET}@v3.0,{record['id']}]", "train.steps=4",
        "train.save_freq=2", "train.batch_size=2", "train.num_workers=0", *TINY_ACT, "train.push_to_hub=true",
        f"train.hub_repo_id={POLICY}", env=pushed.env, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    [train_dir] = _runs(pushed.root, "train")
    train = _run_json(train_dir)
    assert train["parents"] == [record["id"]]
    [hub_input] = train["inputs"]
    assert hub_input["repo_id"] == DATASET and hub_input["revision"] == "v3.0" and hub_input["commit"] == hub_commit
    assert train["lineage"]["dataset_runs"] == [record["id"]]
    assert [d["commit"] for d in train["lineage"]["hub_datasets"]] == [hub_commit]
    [pushed_at_end] = train["pushes"]  # train.push_to_hub: every checkpoint, when training ended
    tags = pushed_at_end["checkpoints"]
    assert pushed_at_end["status"] == "succeeded" and sorted(tags) == ["2", "4"]
    assert tags["2"]["commit"] != tags["4"]["commit"]
    again = run_runner("push", train["id"], "--checkpoint", "all", "--repo-id", POLICY, env=pushed.env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already there") == 2 and "step-000004" in again.stdout, again.stdout

    for step, online in (("2", True), ("4", True), ("2", False)):
        env = pushed.env if online else {**pushed.env, "HF_HUB_OFFLINE": "1"}  # offline: from the local cache
        evaluated = run_runner(
            "eval", "experiment=sim_demo", f"eval.policy_path=hf:{POLICY}@step-00000{step}", "eval.n_episodes=1",
            "eval.videos=0", "episode.episode_time_s=1", env=env, timeout=600,
        )  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        newest = sorted(_runs(pushed.root, "eval"))[-1]
        [policy] = _run_json(newest)["inputs"]
        assert policy["commit"] == tags[step]["commit"] and policy["revision"] == f"step-00000{step}"
        metrics = json.loads((newest / "eval" / "metrics.json").read_text())
        assert metrics["policy_hub"]["commit"] == tags[step]["commit"]
    [card] = [p.read_text() for p in (pushed.base / "hf_home").rglob("README.md") if "models--" in str(p)][:1]
    assert f"hf:{POLICY}@step-" in card and train["id"] in card and record["id"] in card and hub_commit in card

    # Fine-tuning from a Hub model (SmolVLA's base model is the common case): the pulled checkpoint is an input.
    tuned = run_runner(
        "train", "experiment=sim_demo", f"dataset_run={record['id']}", "train.steps=2", "train.save_freq=2",
        f"policy.pretrained_path=hf:{POLICY}@step-000004", "train.batch_size=2", "train.num_workers=0", *TINY_ACT,
        env=pushed.env, timeout=600,
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    newest = sorted(_runs(pushed.root, "train"))[-1]
    [model] = _run_json(newest)["inputs"]
    assert model["hub"] == "model" and model["commit"] == tags["4"]["commit"]


def test_no_secret_reaches_the_hub_the_cache_or_the_outputs(pushed):
    """Every byte runner pushed (the test Hub's blobs), cached and wrote: free of the suite's tokens."""
    files = [p for folder in (pushed.root, pushed.hub.root, pushed.base / "hf_home") for p in folder.rglob("*")
             if p.is_file()]  # fmt: skip
    assert len(files) > 20
    for path in files:
        data = path.read_bytes()
        for secret in SUITE_SECRETS.values():
            assert secret.encode() not in data, f"{secret[:6]}... leaked into {path}"


def test_a_push_killed_mid_upload_leaves_the_run_intact_and_runner_push_finishes_it(pushed, tmp_path):
    """The link drops while the first commit is sent (the Hub's process dies): the record run is as it was, its
    run.json lists the failed push, and once the Hub is back `runner push` completes it."""
    store = tmp_path / "store"
    dying = start_fake_hub(store, "--die-on-commit", "1")
    env = {**pushed.env, **dying.env(tmp_path / "hf_home")}
    record = _run_json(pushed.record)
    frames = record["episodes"]
    failed = run_runner("push", record["id"], env=env, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr[-3000:]
    assert dying.process.wait(timeout=30) == 17
    assert f"runner push {record['id']}" in failed.stderr and "intact" in failed.stderr
    after = _run_json(pushed.record)
    assert after["status"] == "succeeded" and after["episodes"] == frames
    assert after["pushes"][-1]["status"] == "failed" and after["pushes"][-1]["error"]
    assert _runs(pushed.root, "push") and any(_run_json(d)["status"] == "failed" for d in _runs(pushed.root, "push"))

    restarted = start_fake_hub(store)
    try:
        env.update(restarted.env(tmp_path / "hf_home"))
        finished = run_runner("push", record["id"], env=env, timeout=300)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert [p["status"] for p in _run_json(pushed.record)["pushes"][-2:]] == ["failed", "succeeded"]
        loaded = _load_from_hub(env, DATASET, tmp_path / "someone_elses_cache")
        assert loaded["episodes"] == 2 and len(loaded["videos"]) >= 2
    finally:
        restarted.stop()
