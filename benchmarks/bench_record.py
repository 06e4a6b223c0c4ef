"""Recording figures on the simulated arm.

1. Throughput with realtime off: frames/s of `runner record` against a bare loop that steps the same sim
   and calls `LeRobotDataset.add_frame` / `save_episode` directly (the same codec, encoded while recording).
   The same span on both sides: from the first episode's start to the last episode saved (runner: when its
   log lines arrive; its per-episode finalize that makes it crash-safe included), the same seeds, frames per
   episode and operator practice; --repeats interleaved rounds, the median ratio (goal >= 0.8x).
2. Realtime pacing at 30 fps, with two cameras and without: loop period p50/p99, frames later than 1.5 periods.
3. The scripted operator: success rate and mean episode time per scenario (physics only, no cameras).
4. The save transaction that makes an episode's save all-or-nothing (SavedState take + drop, on the dataset
   runner just recorded): milliseconds per episode, and its share of runner's time per episode.

Usage: .venv/bin/python benchmarks/bench_record.py [--episodes 3] [--repeats 3] [--operator-episodes 20]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def runner_record(outputs: Path, episodes: int) -> tuple[list[dict], float]:
    """The episodes runner recorded (episodes.csv) and the seconds from episode 1's start to the last save."""
    import csv

    env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "PYTHONUNBUFFERED": "1"}
    command = [
        str(REPO / ".venv/bin/runner"), "record", "experiment=sim_demo", "episode.realtime=false",
        f"episode.num_episodes={episodes}",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_start = last_saved = None
    for line in process.stderr:
        now = time.perf_counter()
        if first_start is None and f"episode 1/{episodes}" in line and "started" in line:
            first_start = now
        elif "· kept" in line:  # logged once the episode is saved and finalized
            last_saved = now
    if process.wait() != 0 or first_start is None or last_saved is None:
        raise SystemExit(f"runner record failed (exit {process.returncode})")
    [csv_path] = outputs.rglob("episodes.csv")
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return rows, last_saved - first_start


def bare_loop(root: Path, rows: list[dict]) -> tuple[int, float]:
    """The same sim, operator, seeds and dataset calls with none of runner's checks, display or crash safety;
    timed from the first episode's start to the dataset finalized."""
    from lerobot.configs.video import RGBEncoderConfig
    from lerobot.datasets import LeRobotDataset
    from lerobot.utils.feature_utils import hw_to_dataset_features

    from runner.lerobot_adapter.sim_devices import SimScripted, SimScriptedConfig, SimSO101, SimSO101Config
    from runner.schema.recording import DatasetConfig
    from runner.sim.world import Variation

    robot = SimSO101(SimSO101Config(fps=10, camera_sizes={"wrist": [128, 96], "side": [128, 96]}))
    teleop = SimScripted(SimScriptedConfig())
    robot.connect()
    teleop.connect()
    features = hw_to_dataset_features(robot.action_features, "action") | hw_to_dataset_features(
        robot.observation_features, "observation"
    )
    dataset = LeRobotDataset.create(
        "local/bare", 10, features, root=root, robot_type="sim_so101", use_videos=True, image_writer_threads=4,
        rgb_encoder=RGBEncoderConfig(vcodec=str(DatasetConfig.vcodec)),
        streaming_encoding=DatasetConfig.streaming_encoding,
    )  # fmt: skip
    frames = 0
    start = time.perf_counter()
    for attempt, row in enumerate(rows):
        robot.start_episode(int(row["seed"]), Variation())
        teleop.start_episode(int(row["seed"]), practice=attempt)
        for _ in range(int(row["frames"])):
            observation = robot.get_observation()
            sent = robot.send_action(teleop.get_action())
            state = np.array([observation[k] for k in robot.action_features], dtype=np.float32)
            frame = {
                "observation.state": state,
                "observation.images.wrist": observation["wrist"],
                "observation.images.side": observation["side"],
                "action": np.array(list(sent.values()), dtype=np.float32),
                "task": "pick up the red cube and place it on the blue square",
            }
            dataset.add_frame(frame)
            frames += 1
        dataset.save_episode()
    dataset.finalize()
    seconds = time.perf_counter() - start
    robot.disconnect()
    return frames, seconds


def realtime_pacing(seconds: float, cameras: str) -> dict:
    """Run the record stage's own episode loop at 30 fps and time every frame."""
    from hydra import compose, initialize_config_dir

    from runner.core.conf import CONF_DIR, register_resolvers
    from runner.episodes.scenarios import PlannedEpisode
    from runner.episodes.validation import FrameLog
    from runner.lerobot_adapter import dataset_recorder, devices
    from runner.schema import register_schemas
    from runner.sim.world import Variation
    from runner.stages.record.loop import Display, record_episode

    register_schemas()
    register_resolvers()
    overrides = [f"cameras={cameras}", "episode.fps=30", "episode.realtime=true", f"episode.episode_time_s={seconds}",
                 "episode.early_stop.on_success=false"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    robot = devices.make_robot(devices.robot_config(cfg))
    teleop = devices.make_teleop(devices.teleop_config(cfg))
    robot.connect()
    teleop.connect()
    with tempfile.TemporaryDirectory() as tmp:
        recorder = dataset_recorder.DatasetRecorder(Path(tmp) / "ds", "local/pace", 30, robot, True, resume=False)
        robot.start_episode(0, Variation())
        teleop.start_episode(0, 0)
        log = FrameLog({r: (c.height, c.width) for r, c in cfg.cameras.items()}, list(robot.action_features), 0.2)
        planned = PlannedEpisode("one_cube", "pick", 0, {})
        ticks: list[float] = []  # the loop's wall-clock rhythm: when each frame started
        record_episode(robot, teleop, recorder, log, ticks, planned, cfg, None, Display(False), "bench")
        recorder.close()
    robot.disconnect()
    periods = np.diff(ticks) * 1000
    return {
        "frames": len(periods) + 1,
        "p50_ms": float(np.percentile(periods, 50)),
        "p99_ms": float(np.percentile(periods, 99)),
        "late_frames": int((periods > 1.5 * 1000 / 30).sum()),
    }


def save_transaction_ms(root: Path, repeats: int = 20) -> float:
    """Median time to take and drop the roll-back state of a dataset (what each kept episode pays)."""
    from runner.lerobot_adapter.dataset_recorder import SavedState

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = SavedState(root)
        state.take()
        state.drop()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def operator_success(episodes: int) -> list[tuple[str, float, float]]:
    from runner.sim.operator import OperatorStyle, ScriptedOperator
    from runner.sim.world import PickPlaceWorld, Variation

    scenarios = {
        "one_cube (sim_demo)": Variation(),
        "fixed target": Variation(target_position=(0.2, 0.08)),
        "three distractors": Variation(distractors=3),
        "light+camera jitter": Variation(lighting_jitter=0.3, camera_jitter=0.02),
        "noisy operator": Variation(),
    }
    world = PickPlaceWorld({}, control_dt=0.1)
    rows = []
    for name, variation in scenarios.items():
        style = OperatorStyle(noise=0.05) if name == "noisy operator" else OperatorStyle()
        operator = ScriptedOperator(world, style)
        successes, times = 0, []
        for seed in range(episodes):
            world.reset(seed, variation)
            operator.start_episode(seed, seed)
            for step in range(150):
                world.step(operator.act())
                if world.is_success():
                    successes += 1
                    times.append((step + 1) * world.control_dt)
                    break
        rows.append((name, successes / episodes, statistics.mean(times) if times else float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--operator-episodes", type=int, default=20)
    parser.add_argument("--pace-seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    ratios, figures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):  # runner, then the bare loop on runner's episodes: interleaved
            outputs = Path(tmp) / f"outputs-{round_}"
            rows, seconds = runner_record(outputs, args.episodes)
            kept = [r for r in rows if r["kept"] == "True"]
            frames = sum(int(r["frames"]) for r in kept)
            bare_frames, bare_seconds = bare_loop(Path(tmp) / f"bare-{round_}", kept)
            shutil.rmtree(Path(tmp) / f"bare-{round_}")
            ratios.append((frames / seconds) / (bare_frames / bare_seconds))
            figures.append((frames, seconds, bare_frames, bare_seconds))
        [csv_path] = (Path(tmp) / "outputs-0").rglob("episodes.csv")
        transaction_ms = save_transaction_ms(csv_path.parent / "dataset")
    # The median round (the lower middle one for an even --repeats), shown whole.
    middle = sorted(range(len(ratios)), key=ratios.__getitem__)[(len(ratios) - 1) // 2]
    median = ratios[middle]
    frames, seconds, bare_frames, bare_seconds = figures[middle]
    print(f"recording throughput, realtime off, {args.episodes} sim_demo episodes, 2 cameras 128x96, "
          f"{args.repeats} interleaved rounds (the median round shown)")  # fmt: skip
    print(f"  runner record          {frames / seconds:6.2f} frames/s  ({frames} frames in {seconds:.1f} s, "
          "crash-safe)")  # fmt: skip
    print(f"  bare LeRobot loop      {bare_frames / bare_seconds:6.2f} frames/s  ({bare_frames} frames in "
          f"{bare_seconds:.1f} s)")  # fmt: skip
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"  ratio                  {median:6.2f} x   (rounds {rounds}; goal >= 0.80 x)")
    share = transaction_ms / 1000 / (seconds / args.episodes)
    print(f"  save transaction       {transaction_ms:6.2f} ms per episode ({share:.2%} of runner's time per episode)")
    for cameras, label in (("sim_wrist_side", "2 cameras 128x96"), ("none", "no cameras: the loop's own pacing")):
        pace = realtime_pacing(args.pace_seconds, cameras)
        print(f"realtime pacing at 30 fps (period 33.3 ms), {label}, {pace['frames']} frames")
        print(f"  loop period p50 {pace['p50_ms']:.1f} ms · p99 {pace['p99_ms']:.1f} ms · late {pace['late_frames']}")
    print("  goal: p99 within 2 ms of 33.3 ms and no frame later than 50 ms")
    print(f"scripted operator, {args.operator_episodes} episodes per scenario (10 Hz control)")
    for name, rate, mean_s in operator_success(args.operator_episodes):
        print(f"  {name:<22} success {rate:5.0%} · mean time to success {mean_s:4.1f} s")


if __name__ == "__main__":
    main()
