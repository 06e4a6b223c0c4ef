"""The scene check where it runs: before a simulated evaluation (refuse, warn) and as `runner check-scene`."""

import json

import pytest
from conftest import run_dirs, run_runner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("trained")]

EVAL = ["eval", "experiment=sim_demo", "eval.n_episodes=1", "eval.videos=0", "episode.episode_time_s=1"]
MOVED = "robot.camera_moves.side=[0.03,0,0]"


def _newest(root, stage):
    runs = [d for d in run_dirs(root) if json.loads((d / "run.json").read_text())["stage"] == stage]
    return max(runs, key=lambda d: d.name)


def test_an_eval_with_a_moved_camera_is_refused_before_it_starts(trained):
    before = run_dirs(trained)
    result = run_runner(*EVAL, MOVED, env={"RUNNER_OUTPUTS": str(trained)}, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    [paragraph] = [line for line in result.stderr.splitlines() if line.startswith("Config error")]
    assert "`scene_check`" in paragraph and "camera 'side' moved" in paragraph and "runner check-scene" in paragraph
    assert "camera 'wrist'" not in paragraph  # the wrist camera rides on the arm: it did not move
    assert run_dirs(trained) == before


def test_warn_evaluates_and_records_the_difference_with_an_overlay(trained):
    result = run_runner(*EVAL, MOVED, "scene_check=warn", env={"RUNNER_OUTPUTS": str(trained)}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = _newest(trained, "eval")
    scene = json.loads((run / "run.json").read_text())["scene_check"]
    side = scene["cameras"]["side"]
    assert scene["mode"] == "warn" and scene["changed"] and side["shift_px"] > 4 and side["problems"]
    assert (run / side["overlay"]).stat().st_size > 1000
    assert json.loads((run / "eval" / "metrics.json").read_text())["scene_check"] == scene


def test_an_unchanged_scene_passes_through_the_recordings_video(trained):
    """The reference is decoded from the recording's compressed video: that alone is no change."""
    result = run_runner(*EVAL, env={"RUNNER_OUTPUTS": str(trained)}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    scene = json.loads((_newest(trained, "eval") / "run.json").read_text())["scene_check"]
    assert scene["mode"] == "refuse" and not scene["changed"]
    assert sorted(scene["cameras"]) == ["side", "wrist"] and scene["seconds"] < 5


def test_check_scene_shows_what_each_camera_sees_now(trained):
    env = {"RUNNER_OUTPUTS": str(trained)}
    same = run_runner("check-scene", "latest:record", "experiment=sim_demo", env=env, timeout=300)
    assert same.returncode == 0, same.stderr[-3000:]
    assert same.stdout.count("unchanged") == 2
    moved = run_runner("check-scene", "latest:record", "experiment=sim_demo", MOVED, env=env, timeout=300)
    assert moved.returncode == 1, moved.stderr[-3000:]
    assert "moved" in moved.stdout
    run = _newest(trained, "check-scene")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "succeeded" and record["scene_check"]["changed"]
    assert (run / "scene_side.png").exists() and (run / "scene_wrist.png").exists()


def test_a_process_draws_a_simulated_scene_once_per_recording_and_world(trained, monkeypatch):
    """A sweep checks every job before it starts, and a process may run several jobs: the same recording
    against the same simulated world is drawn and compared once; another world is checked anew."""
    from runner.core.conf import compose_config
    from runner.scene import sources

    recording = _newest(trained, "record") / "dataset"
    drawn = []
    draw = sources.sim_view
    monkeypatch.setattr(sources, "sim_view", lambda cfg, seed: drawn.append(seed) or draw(cfg, seed))
    first = sources.check_in_sim(compose_config(["experiment=sim_demo"]), recording)[0]
    again = sources.check_in_sim(compose_config(["experiment=sim_demo"]), recording)[0]
    moved = sources.check_in_sim(compose_config(["experiment=sim_demo", MOVED]), recording)[0]
    assert len(drawn) == 2, drawn  # the same world once, the moved camera's anew
    assert again.cameras == first.cameras and not first.changed and moved.changed
    assert again.seconds == 0 < first.seconds  # run.json says what each check took
