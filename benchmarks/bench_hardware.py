"""Real-arm loop figures on emulated hardware (`runner emulate`'s SO-101 buses, host=emulated).

1. Teleoperation loop rate, uncapped (episode.fps=1000) for a few seconds: `runner teleoperate` vs LeRobot's
   own `teleop_loop` (lerobot-teleoperate's loop) on the same emulated arms. The same process set-up: the
   arms are served by `runner emulate` in a process of their own, each loop runs in a process of its own.
   LeRobot's loop also reads the follower's observation every step, which runner's does not need: it is
   timed as it is and with that read answered from memory (the same bus work per step as runner's).
   --repeats interleaved rounds, medians.
2. Record loop period p50/p99 at 30 fps with two emulated 640x480 cameras (wrist + side), as the record
   stage measures it (wall time between frames, per episode in episodes.csv), and the achieved fps.

Usage: .venv/bin/python benchmarks/bench_hardware.py [--seconds 5] [--record-s 10] [--repeats 3]
"""

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timed_runner import RUNNER, run

ARMS = ["host=emulated", "robot=so101_follower", "teleop=so101_leader"]


def lerobot_teleop_rate(folder: Path, seconds: float, read_observation: bool) -> float:
    """LeRobot's teleop_loop on the emulated arms; steps counted at the follower's send_action. Without
    ``read_observation``, the follower's observation is read once and then answered from memory."""
    from lerobot.processor import make_default_processors
    from lerobot.robots import make_robot_from_config
    from lerobot.robots.so_follower import SO101FollowerConfig
    from lerobot.scripts.lerobot_teleoperate import teleop_loop
    from lerobot.teleoperators import make_teleoperator_from_config
    from lerobot.teleoperators.so_leader import SO101LeaderConfig

    calibration = folder / "calibration"
    follower = SO101FollowerConfig(port=str(folder / "follower"), id="follower", calibration_dir=calibration,
                                   max_relative_target=10.0)  # fmt: skip
    robot = make_robot_from_config(follower)
    teleop = make_teleoperator_from_config(
        SO101LeaderConfig(port=str(folder / "leader"), id="leader", calibration_dir=calibration)
    )
    robot.connect()
    teleop.connect()
    steps = 0
    send = robot.send_action

    def counted(action):
        nonlocal steps
        steps += 1
        return send(action)

    robot.send_action = counted
    if not read_observation:
        observation = robot.get_observation()
        robot.get_observation = lambda: observation
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its live table of joint values
            teleop_loop(teleop, robot, 1000, *make_default_processors(), duration=seconds)
    finally:
        teleop.disconnect()
        robot.disconnect()
    return steps / seconds


def in_own_process(folder: Path, seconds: float, read_observation: bool) -> float:
    """lerobot_teleop_rate in a child process, as `runner teleoperate` runs in one."""
    command = [sys.executable, __file__, "--child", str(folder), str(seconds), str(int(read_observation))]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"LeRobot's teleop loop failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def emulated_arms(folder: Path):
    """`runner emulate --dir folder`, in a process of its own, until the block ends."""
    process = subprocess.Popen([RUNNER, "emulate", "--dir", str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Ctrl-C stops the arms"):
                break
        else:
            raise SystemExit("runner emulate ended before its arms were ready")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--record-s", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, seconds, read_observation = args.child
        print(lerobot_teleop_rate(Path(folder), float(seconds), read_observation == "1"))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder, outputs = Path(tmp) / "emulated", Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1", "RUNNER_EMULATED_DIR": str(folder)}
        with emulated_arms(folder):
            rates: dict[str, list[float]] = {"runner": [], "lerobot": [], "lerobot, observation from memory": []}
            for _ in range(args.repeats):
                before = set(outputs.rglob("run.json"))
                run(["teleoperate", *ARMS, "cameras=none", "episode.fps=1000", f"duration_s={args.seconds}"], env)
                [record] = [json.loads(p.read_text()) for p in set(outputs.rglob("run.json")) - before]
                rates["runner"].append(record["teleoperation"]["rate_hz_mean"])
                rates["lerobot"].append(in_own_process(folder, args.seconds, read_observation=True))
                rates["lerobot, observation from memory"].append(in_own_process(folder, args.seconds, False))
            median = {arm: statistics.median(v) for arm, v in rates.items()}
            print(f"teleoperation loop, uncapped, {args.seconds:g} s on emulated SO-101 arms (runner emulate), "
                  f"each loop in its own process, median of {args.repeats}:")  # fmt: skip
            print(f"  runner teleoperate                        {median['runner']:7.1f} Hz")
            for arm in ("lerobot", "lerobot, observation from memory"):
                label = "LeRobot teleop_loop" + (", observation from memory" if "memory" in arm else "")
                print(f"  {label:<41} {median[arm]:7.1f} Hz   (runner / LeRobot = "
                      f"{median['runner'] / median[arm]:.2f}x; rounds "
                      f"{', '.join(f'{r:.0f}' for r in rates[arm])})")  # fmt: skip

            started = time.perf_counter()
            run(["record", *ARMS, "cameras=wrist_side", "cameras.wrist.fourcc=null", "cameras.side.fourcc=null",
                    "episode.fps=30", "episode.num_episodes=2", f"episode.episode_time_s={args.record_s}",
                    "episode.reset_time_s=0", "episode.early_stop.keys=false", "episode.early_stop.idle_s=null",
                    "episode.validation=warn"], env)  # fmt: skip
            wall = time.perf_counter() - started
        [table] = list(outputs.rglob("episodes.csv"))
        with open(table, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["kept"] == "True"]
        p50 = statistics.median(float(r["period_p50_ms"]) for r in rows)
        p99 = max(float(r["period_p99_ms"]) for r in rows)
        fps = statistics.fmean(float(r["achieved_fps"]) for r in rows)
        frames = sum(int(r["frames"]) for r in rows)
        print(f"record at 30 fps, 2 emulated 640x480 cameras, {len(rows)} x {args.record_s:g} s ({frames} frames, "
              f"{wall:.0f} s with start-up and encoding):")  # fmt: skip
        print(f"  loop period p50 {p50:.1f} ms · p99 {p99:.1f} ms (worst episode; target 33.3 ms) · "
              f"achieved {fps:.1f} fps")  # fmt: skip


if __name__ == "__main__":
    main()
