"""`runner eval` on a real arm: the blinded, operator-scored session, through LeRobot's SO-101 follower class on
an emulated servo bus (`runner emulate`'s buses, host=emulated) with emulated cameras, keys on a terminal."""

import csv
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO, run_dirs, run_runner, start_server, stop_server, wait_until

from runner.commands.emulate import serve
from runner.episodes.trials import blinded_order

# With pytest-xdist, the tests sharing the `trained` fixture run in one worker, so it is built once.
# The emulated arms answer from this process's threads within LeRobot's packet timeout: run one at a time.
pytestmark = [pytest.mark.xdist_group("trained"), pytest.mark.alone]

ROBOT = ["experiment=sim_demo", "robot=so101_follower", "teleop=so101_leader", "host=emulated", "cameras=wrist_side",
         "cameras.wrist.width=128", "cameras.wrist.height=96", "cameras.side.width=128", "cameras.side.height=96",
         "cameras.wrist.fourcc=null", "cameras.side.fourcc=null", "eval.n_episodes=2", "episode.episode_time_s=1",
         "eval.videos=1", "scene_check=off"]  # fmt: skip
# scene_check=off: the emulated cameras' test pattern is not the scene the policy's (simulated) recording saw.
SCENARIOS = ("task.scenarios=[{name: near, instruction: pick up the red cube, num_episodes: 1, start_positions: "
             "['cube on mark A']}, {name: far, instruction: pick up the red cube, num_episodes: 1, start_positions: "
             "['cube on mark B']}]")  # fmt: skip
METRIC_KEYS = {"success_rate", "n_episodes", "successes", "ci95", "mean_sum_reward", "mean_episode_s",
               "checkpoint_step", "policy_run", "seeds"}  # fmt: skip
TORQUE_ENABLE, GOAL_POSITION = 40, 42


@pytest.fixture
def arms(tmp_path, monkeypatch):
    folder = tmp_path / "emulated"
    monkeypatch.setenv("RUNNER_EMULATED_DIR", str(folder))
    with serve(folder, leader_moves=False) as buses:
        yield buses


def _session(root, *overrides, decisions, starts=None, watch=None, press_while_running=True, bus=None):
    """Run a session on a terminal: space starts each trial (or ``starts`` answer the start prompts in turn);
    ``decisions`` answer, in turn, the first episode while it runs ("running...") and every "time is up";
    ``watch(line)`` sees every line first; ``press_while_running=False``: the first episode runs its time too;
    ``bus`` (the follower's): the key while it runs waits for the policy's first step on the arm (an observation
    read and an action written), as an operator's would: a key before any step ends an episode with no frame."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "eval", *ROBOT, *overrides], cwd=REPO, stdin=slave,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "RUNNER_OUTPUTS": str(root), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    os.close(slave)
    output, answers, start_keys = [], iter(decisions), iter(starts or [])
    pressed_during_episode = not press_while_running
    try:
        for line in process.stdout:
            output.append(line)
            if watch is not None:
                watch(line)
            key = None
            if "space: start the episode" in line:
                key = next(start_keys, " ")
            elif "running..." in line and not pressed_during_episode:
                pressed_during_episode, key = True, next(answers)
                if bus is not None:
                    stepped = lambda start=bus.transactions: bus.transactions >= start + 2  # noqa: E731
                    wait_until(stepped, "the policy's first step", process=process)
            elif "time is up" in line:
                key = next(answers)
            if key is not None:  # the session queues keys as they come: no need to wait before pressing
                os.write(master, key.encode())
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return process.returncode, "".join(output)


@pytest.mark.slow
def test_blinded_session_interleaves_checkpoints_scores_by_key_and_compares_like_simulation(trained, arms):
    follower = arms["follower"]
    arms["leader"].unplug()  # evaluation needs no leader arm, even when the experiment names one
    moved = []
    watching = threading.Event()

    def watch():  # how far the policy drove the follower from its start, while the session runs
        while not watching.is_set():
            moved.append(max(abs(s.word(GOAL_POSITION) - 2048) for s in follower.servos.values()))
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    before = set(run_dirs(trained))
    # trial 1: s while it runs; trial 2: r (redo), then f; trial 3: s; trial 4: f
    code, output = _session(trained, SCENARIOS, "eval.order_seed=7", decisions=["s", "r", "f", "s", "f"], bus=follower)
    watching.set()
    assert code == 0, output[-3000:]
    assert max(moved) > 0 and all(s.memory[TORQUE_ENABLE] == 0 for s in follower.servos.values())
    runs = sorted(set(run_dirs(trained)) - before)
    assert len(runs) == 2 and runs[0].parent == runs[1].parent
    sweep = json.loads((runs[0].parent / "sweep.json").read_text())
    assert sweep["stage"] == "eval" and sweep["blinded"]["order_seed"] == 7 and sweep["ended_at"]

    blinded = output[output.index("Blinded evaluation") : output.index("Unblinded results")]
    assert "checkpoint" not in blinded and not re.search(r"step \d", blinded)  # never which policy runs
    assert "set up: cube on mark A" in blinded and "set up: cube on mark B" in blinded

    order = blinded_order(2, 2, 7)
    verdicts = {1: "True", 2: "False", 3: "True", 4: "False"}
    steps = []
    for run in runs:
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "succeeded" and record["sweep"]["id"] == sweep["id"]
        assert record["calibration"]["robot"]["sha256"] and record["checks"]["cameras"] == "match"
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        assert set(metrics) >= METRIC_KEYS and metrics["n_episodes"] == 2 and metrics["scored_by"] == "operator"
        steps.append(metrics["checkpoint_step"])
        with open(run / "eval" / "episodes.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {"trial", "ended_by", "redos", "clamped_steps"} <= set(rows[0])
        policy = next(t.policy for t in order if t.number == int(rows[0]["trial"]))
        assert [int(r["trial"]) for r in rows] == [t.number for t in order if t.policy == policy]
        assert [r["success"] for r in rows] == [verdicts[int(r["trial"])] for r in rows]
        assert metrics["successes"] == sum(r["success"] == "True" for r in rows)
        for row in rows:
            assert row["ended_by"] == ("key" if row["trial"] == "1" else "time")
            assert row["redos"] == ("1" if row["trial"] == "2" else "0")
        assert len(list((run / "eval" / "videos").glob("*.mp4"))) == 1
    assert sorted(steps) == [2, 4]

    compared = run_runner("compare", sweep["id"], "--json", env={"RUNNER_OUTPUTS": str(trained)})
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = json.loads(compared.stdout)["rows"]
    assert sorted(r["checkpoint_step"] for r in rows) == [2, 4], "both checkpoints' scores, side by side"


@pytest.mark.slow
def test_q_stops_the_session_keeping_what_was_scored(trained, arms):
    before = set(run_dirs(trained))
    # trial 1 scored a success after its time is up, then q at the start of trial 2
    code, output = _session(trained, "eval.n_episodes=1", "eval.order_seed=1", decisions=["s"], starts=[" ", "q"])
    assert code == 130 and "stopped by the operator before trial 2 of 2" in output, output[-3000:]
    runs = sorted(set(run_dirs(trained)) - before)
    records = [json.loads((run / "run.json").read_text()) for run in runs]
    assert [r["status"] for r in records] == ["interrupted", "interrupted"]
    assert all(not (run / "eval" / "metrics.json").exists() for run in runs)  # a half comparison is no result
    [scored] = [run / "eval" / "episodes.csv" for run in runs if (run / "eval" / "episodes.csv").exists()]
    assert len(scored.read_text().splitlines()) == 2 and ",True," in scored.read_text()
    assert json.loads((runs[0].parent / "sweep.json").read_text())["ended_at"]
    assert all(s.memory[TORQUE_ENABLE] == 0 for s in arms["follower"].servos.values())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "terminal", "words"),
    [
        (["cameras.side.width=96"], True, ["camera 'side': recorded 128x96, evaluating 96x96", "camera_check=warn"]),
        ([], False, ["stdin is not a terminal", "runner eval"]),
        (["eval.save_rollouts=true"], True, ["eval.save_rollouts", "only in simulation"]),
        (["-m", "eval.n_episodes=1,2"], True, ["eval.n_episodes", "one evaluation session at a time"]),
        (["eval.inference=rtc", "eval.checkpoint=last"], True, ["eval.inference", "is a act policy", "smolvla"]),
        (
            ["eval.inference=remote", "eval.server=127.0.0.1:9", "eval.checkpoint=last"],
            True,
            ["eval.server", "no policy server answers"],
        ),
    ],
    ids=["camera-size", "no-terminal", "rollouts", "sweep", "rtc-for-act", "no-server"],
)
def test_bad_real_robot_eval_fails_before_the_arm_moves(trained, arms, overrides, terminal, words):
    before = set(run_dirs(trained))
    master, slave = pty.openpty()
    result = subprocess.run(
        [sys.executable, "-m", "runner", "eval", *ROBOT, *overrides], cwd=REPO,
        stdin=slave if terminal else subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        env={**os.environ, "RUNNER_OUTPUTS": str(trained)},
    )  # fmt: skip
    os.close(slave)
    os.close(master)
    assert result.returncode == 2, result.stderr[-3000:]
    for word in words:
        assert word in result.stderr
    assert set(run_dirs(trained)) == before
    follower = arms["follower"]
    assert all(s.memory[TORQUE_ENABLE] == 0 and s.word(GOAL_POSITION) == 2048 for s in follower.servos.values())


@pytest.mark.slow
def test_a_remote_policy_drives_the_arm_and_a_server_killed_mid_trial_aborts_it_until_reconnected(trained, arms):
    """eval.inference=remote on LeRobot's SO-101 follower class: the policy runs in `runner serve`. The server
    is killed during trial 2: the arm is released (eval.on_link_lost=release), the trial is recorded aborted and
    not scored, trial 1 keeps its score, and once a server answers again on the same port the trial runs again."""
    follower = arms["follower"]
    arms["leader"].unplug()
    train = max((d for d in run_dirs(trained) if "-train-" in d.name), key=lambda d: d.name).name
    serving = [f"policy_run={train}", f"paths.outputs={trained}"]
    server, host, port = start_server(trained, *serving)
    state = {"server": server, "episodes": 0, "torque_while_lost": None}

    def watch(line: str) -> None:
        if "running..." in line:
            state["episodes"] += 1
            if state["episodes"] == 2:
                state["server"].kill()
                state["server"].wait(timeout=30)
        if "Waiting up to" in line:
            state["torque_while_lost"] = [s.memory[TORQUE_ENABLE] for s in follower.servos.values()]
            state["server"], _, _ = start_server(trained, *serving, port=port)

    before = set(run_dirs(trained))
    try:
        code, output = _session(
            trained, f"policy_run={train}", "eval.checkpoint=last", "eval.inference=remote",
            f"eval.server={host}:{port}", "eval.on_link_lost=release", "eval.stale_action_s=1",
            "eval.reconnect_s=120", decisions=["s", "f"], watch=watch,
        )  # fmt: skip
    finally:
        if state["server"].poll() is None:
            stop_server(state["server"])
    assert code == 0, output[-3000:]
    assert "this trial is aborted, not scored" in output and "reconnected" in output, output[-3000:]
    assert state["torque_while_lost"] == [0] * len(follower.servos), "released while the server was away"
    assert all(s.memory[TORQUE_ENABLE] == 0 for s in follower.servos.values())
    [run] = [d for d in set(run_dirs(trained)) - before if "-eval-" in d.name]
    with open(run / "eval" / "episodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["trial"], r["status"], r["success"]) for r in rows] == [
        ("1", "scored", "True"),
        ("2", "aborted", ""),
        ("2", "scored", "False"),
    ]
    assert float(rows[2]["latency_ms_p50"]) > 0 and float(rows[2]["control_hz"]) > 0
    assert float(rows[1]["stopped_after_s"]) <= 1 + 0.5
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["inference"] == "remote" and metrics["n_episodes"] == 2 and metrics["successes"] == 1
    assert [a["episode"] for a in metrics["aborted_episodes"]] == [int(rows[1]["episode"])]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "succeeded" and record["inference"] == {"mode": "remote", "server": f"{host}:{port}"}


@pytest.mark.slow
def test_smolvla_drives_the_arm_with_lerobot_real_time_chunking(trained, arms, tmp_path):
    """eval.inference=rtc: LeRobot's RTCInferenceEngine computes SmolVLA's chunks in its thread, each guided by
    the last one's leftover actions, while the control loop sends what is queued; a step with nothing queued
    is an underrun, counted with the achieved rate."""
    from tiny_vlm import build_tiny_vlm

    follower = arms["follower"]
    arms["leader"].unplug()
    root = tmp_path / "outputs"  # a root of its own: the other sessions evaluate the latest train run of `trained`
    [record] = [d for d in run_dirs(trained) if "-record-" in d.name]
    shutil.copytree(record, root / record.relative_to(trained))
    vlm = build_tiny_vlm(tmp_path / "tiny-smolvlm")
    smolvla = [
        "policy=smolvla", f"policy.vlm_path={vlm}", "policy.load_vlm_weights=false",
        "policy.resize_imgs_with_padding=[64,64]", "policy.chunk_size=10", "policy.n_action_steps=10",
        "policy.max_state_dim=8", "policy.max_action_dim=8", "policy.tokenizer_max_length=16",
        "policy.scheduler_warmup_steps=1", "policy.scheduler_decay_steps=10",
    ]  # fmt: skip
    trained_smolvla = run_runner(
        "train", "experiment=sim_demo", f"dataset_run={record.name}", *smolvla, "train.steps=2", "train.save_freq=2",
        "train.batch_size=2", "train.num_workers=0", env={"RUNNER_OUTPUTS": str(root)}, timeout=900,
    )  # fmt: skip
    assert trained_smolvla.returncode == 0, trained_smolvla.stderr[-3000:]
    moved = []
    watching = threading.Event()

    def watch_arm():
        while not watching.is_set():
            moved.append(max(abs(s.word(GOAL_POSITION) - 2048) for s in follower.servos.values()))
            time.sleep(0.05)

    threading.Thread(target=watch_arm, daemon=True).start()
    code, output = _session(
        root, "eval.checkpoint=last", "eval.n_episodes=1", "episode.episode_time_s=3", "eval.inference=rtc",
        "eval.rtc_execution_horizon=4", "eval.rtc_queue_threshold=3", "eval.videos=0", *smolvla,
        decisions=["s"], press_while_running=False,
    )  # fmt: skip
    watching.set()
    assert code == 0, output[-3000:]
    assert max(moved) > 0 and all(s.memory[TORQUE_ENABLE] == 0 for s in follower.servos.values())
    [run] = [d for d in run_dirs(root) if "-eval-" in d.name]
    with open(run / "eval" / "episodes.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["ended_by"] == "time" and int(row["steps"]) == 30
    assert int(row["underruns"]) < int(row["steps"]), "the engine's chunks reached the arm"
    assert float(row["control_hz"]) > 5
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["inference"] == "rtc" and metrics["policy_type"] == "smolvla"
    assert metrics["underruns"] == int(row["underruns"])
    assert json.loads((run / "run.json").read_text())["inference"] == {"mode": "rtc"}
