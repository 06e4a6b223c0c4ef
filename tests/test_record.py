"""`runner record` on the simulated arm: datasets LeRobot loads, early stops, keys, crash safety, bad input."""

import csv
import json
import os
import pty
import signal
import time

import pytest
from conftest import run_dirs, run_runner, start_runner, wait_for_log

FAST = ["experiment=sim_demo", "episode.realtime=false"]


def _episodes(run_dir):
    with open(run_dir / "episodes.csv") as f:
        return list(csv.DictReader(f))


def _load(run_dir):
    from runner.lerobot_adapter.recording import load_dataset

    info = json.loads((run_dir / "dataset" / "meta" / "info.json").read_text())
    return load_dataset(run_dir / "dataset", "local/sim_demo"), info


def _decode_everything(dataset):
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["observation.images.wrist"].shape == (3, 96, 128)
        assert item["observation.images.side"].shape == (3, 96, 128)


@pytest.mark.slow
def test_record_sim_demo_makes_a_lerobot_dataset(outputs_root):
    result = run_runner("record", *FAST, "episode.num_episodes=3", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = run_dirs(outputs_root)
    dataset, info = _load(run_dir)
    assert dataset.num_episodes == 3
    assert set(dataset.meta.camera_keys) == {"observation.images.wrist", "observation.images.side"}
    assert info["features"]["observation.state"]["shape"] == [6]
    assert info["features"]["action"]["shape"] == [6]
    assert info["features"]["action"]["names"] == [
        "shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos",
    ]  # fmt: skip
    assert list(dataset.meta.tasks.index) == ["pick up the red cube and place it on the blue square"]
    _decode_everything(dataset)
    rows = _episodes(run_dir)
    assert [r["kept"] for r in rows] == ["True"] * 3
    assert all(r["end_reason"] == "success" and r["success"] == "True" for r in rows), "success stops the episode"
    assert all(int(r["frames"]) < 150 for r in rows), "an episode is shorter than its cap"
    assert (run_dir / "dataset" / "meta" / "runner_episodes.csv").read_text() == (run_dir / "episodes.csv").read_text()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["episodes"] == {"target": 3, "kept": 3, "discarded": 0, "successes": 3, "complete": True}
    assert record["sim_world"] == {"render": "fast"}, "the default look, recorded"
    assert json.loads((run_dir / "dataset" / "meta" / "runner_sim_world.json").read_text()) == {"render": "fast"}


@pytest.mark.slow
def test_record_with_no_overrides_records_the_default_sim_dataset(outputs_root):
    result = run_runner("record", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = run_dirs(outputs_root)
    assert run_dir.parent.name == "default"
    rows = _episodes(run_dir)
    assert len(rows) == 3 and all(r["kept"] == "True" for r in rows)
    assert json.loads((run_dir / "dataset" / "meta" / "info.json").read_text())["fps"] == 30


@pytest.mark.slow
def test_sigkill_loses_at_most_the_current_episode_and_resume_finishes(outputs_root):
    process = start_runner("record", *FAST, "episode.num_episodes=4")
    wait_for_log(process, "episode 2/4", "kept")
    time.sleep(2.0)  # well into episode 3
    process.kill()
    process.wait(timeout=30)
    [run_dir] = run_dirs(outputs_root)
    dataset, _ = _load(run_dir)
    assert dataset.num_episodes == 2, "both finished episodes survive the kill"
    _decode_everything(dataset)
    assert any((run_dir / "dataset" / "images").rglob("*.png")), "the killed episode left staged frames"

    other_camera = run_runner("record", f"resume={run_dir.name}", "cameras.side.width=96")
    assert other_camera.returncode == 2 and "`cameras.side.width` cannot change when resuming" in other_camera.stderr
    assert any((run_dir / "dataset" / "images").rglob("*.png")), "the refused resume touched nothing"

    resumed = run_runner("record", f"resume={run_dir.name}", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "removed" in resumed.stderr and "staged frames" in resumed.stderr
    dataset, _ = _load(run_dir)
    assert dataset.num_episodes == 4
    _decode_everything(dataset)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "succeeded" and len(record["resumes"]) == 1
    assert record["resumes"][0]["from_status"] == "stale"
    assert [r["dataset_episode"] for r in _episodes(run_dir) if r["kept"] == "True"] == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_keys_over_a_terminal_end_rerecord_and_stop(outputs_root):
    master, slave = pty.openpty()
    process = start_runner(
        "record", "experiment=sim_demo", "episode.realtime=true", "episode.early_stop.on_success=false",
        "episode.early_stop.idle_s=null", "episode.episode_time_s=60",
        "episode.validation=warn", stdin=slave,  # keys are the subject: load may not discard an episode
    )  # fmt: skip
    os.close(slave)
    sent = []

    def press(key):
        time.sleep(1.5)
        os.write(master, key.encode())
        sent.append(key)

    for line in process.stderr:
        if "recording 10 episodes" in line:
            press("f")
        elif "ended by" in line:
            if len(sent) == 1:
                press("r")
            elif len(sent) == 2:
                press("\x1b[C")  # right arrow: success
            elif len(sent) == 3:
                press("q")
    process.wait(timeout=120)
    os.close(master)
    assert process.returncode == 0
    [run_dir] = run_dirs(outputs_root)
    rows = _episodes(run_dir)
    assert [r["end_reason"] for r in rows] == ["failure_key", "rerecord_key", "success_key", "stop_key"]
    assert [r["kept"] for r in rows] == ["True", "False", "True", "True"]
    assert [r["success"] for r in rows[:3:2]] == ["False", "True"]
    assert json.loads((run_dir / "run.json").read_text())["episodes"]["kept"] == 3


@pytest.mark.slow
def test_idle_operator_ends_the_episode(outputs_root):
    result = run_runner(
        "record", *FAST, "episode.num_episodes=1", "episode.early_stop.on_success=false",
        "episode.early_stop.idle_s=1.5", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = _episodes(run_dirs(outputs_root)[0])
    assert row["end_reason"] == "idle" and row["success"] == "True"


def test_record_is_listed_by_help_and_composes():
    assert "record" in run_runner("--help").stdout
    job = run_runner("record", "experiment=so101_pick_place", "--cfg", "job")
    assert job.returncode == 0 and "playdough" in job.stdout


def test_sigterm_stops_recording_cleanly(outputs_root):
    process = start_runner("record", *FAST, "episode.num_episodes=3")
    wait_for_log(process, "recording 3 episodes")
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 143
    [run_dir] = run_dirs(outputs_root)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"


def test_resume_keeps_the_runs_own_cameras_and_a_raised_target(outputs_root):
    """The resumed config is the run's saved one: the default camera set is not merged back in, and a target
    raised on one resume is still the target of the next."""
    first = run_runner("record", *FAST, "cameras=sim_side_small", "episode.num_episodes=1", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    [run_dir] = run_dirs(outputs_root)
    raised = run_runner("record", f"resume={run_dir.name}", "episode.num_episodes=2", timeout=600)
    assert raised.returncode == 0, raised.stderr[-3000:]
    again = run_runner("record", f"resume={run_dir.name}", timeout=600)
    assert again.returncode == 0 and "recording 2 episodes (2 already kept)" in again.stderr
    dataset, _ = _load(run_dir)
    assert dataset.num_episodes == 2 and dataset.meta.camera_keys == ["observation.images.side"]
