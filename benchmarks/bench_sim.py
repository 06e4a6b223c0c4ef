"""The simulator's figures, each against the reference it names, in one run.

1. Rendering: ms per 128x96 frame, robot.render=full vs fast (side and wrist cameras), and the ratio; the time
   to make a camera's renderer against MuJoCo's default (every mesh uploaded to GL).
2. Physics: MuJoCo steps/s (2 ms timestep) and 10 Hz control steps/s, no cameras.
3. Recording with realtime off: frames/s of `runner record` (episode loops, from episodes.csv, and the whole
   stage after start-up, saves included) against a bare loop that only steps and renders the same world with
   the same cameras and the same scripted operator for the same frames (goal >= 0.8x).
4. Evaluation: steps/s of `runner eval` (metrics.json) against a bare loop that steps, renders and runs the
   same policy through LeRobot's processors on the same seeds (goal >= 0.8x).
5. Realtime recording at 30 fps with wrist + side cameras: wall-clock loop period p50/p99 and late frames.
6. With --demo: the wall time of `runner pipeline experiment=demo` (`make demo` after set-up) and its table.

Usage: .venv/bin/python benchmarks/bench_sim.py [--episodes 3] [--demo]
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from timed_runner import RUNNER, run

import runner.sim  # noqa: F401  (MuJoCo's GL backend first)

CAMERAS = {"wrist": (128, 96), "side": (128, 96)}


def ms_per_frame(render: str, role: str, frames: int = 60) -> float:
    from runner.sim.world import PickPlaceWorld, Variation

    world = PickPlaceWorld(CAMERAS, 0.1, render=render)
    world.reset(0, Variation())
    world.render(role)
    start = time.perf_counter()
    for _ in range(frames):
        world.render(role)
    seconds = time.perf_counter() - start
    world.close()
    return 1000 * seconds / frames


def renderer_setup_ms(repeat: int = 5) -> tuple[float, float]:
    """Median ms to make a fast world's camera renderer (runner's: only the meshes a visible geom draws) against
    a MuJoCo renderer of the same model (every mesh uploaded to GL)."""
    import mujoco

    from runner.sim.world import PickPlaceWorld

    ours, every_mesh = [], []
    for _ in range(repeat):
        world = PickPlaceWorld({"side": (128, 96)}, 0.1)
        start = time.perf_counter()
        world.render("side")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        mujoco.Renderer(world.model, height=96, width=128).close()
        every_mesh.append(time.perf_counter() - start)
        world.close()
    return 1000 * statistics.median(ours), 1000 * statistics.median(every_mesh)


def physics_rates(seconds: float = 2.0) -> tuple[float, float]:
    import mujoco

    from runner.sim.world import PickPlaceWorld, Variation

    world = PickPlaceWorld({}, 0.1)
    world.reset(0, Variation())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        mujoco.mj_step(world.model, world.data)
        steps += 1
    mj_rate = steps / (time.perf_counter() - start)
    targets = world.joint_positions()
    controls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        world.step(targets)
        controls += 1
    return mj_rate, controls / (time.perf_counter() - start)


def episodes_table(run_dir: Path) -> list[dict]:
    with open(run_dir / "episodes.csv") as f:
        return list(csv.DictReader(f))


def record_run(outputs: Path, args: list[str]) -> tuple[Path, float]:
    env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
    before = set(outputs.rglob("run.json"))
    run(["record", "experiment=sim_demo", *args], env)
    [run_json] = set(outputs.rglob("run.json")) - before
    record = json.loads(run_json.read_text())
    from datetime import datetime

    ended, started = (datetime.fromisoformat(record[k]) for k in ("ended_at", "started_at"))
    stage_s = (ended - started).total_seconds()
    return run_json.parent, stage_s


def bare_record_loop(rows: list[dict]) -> float:
    """Seconds to step and render the same world, cameras and operator for each recorded episode's frames."""
    from runner.sim.operator import OperatorStyle, ScriptedOperator
    from runner.sim.world import PickPlaceWorld, Variation

    world = PickPlaceWorld(CAMERAS, 0.1)
    operator = ScriptedOperator(world, OperatorStyle())
    start = time.perf_counter()
    for practice, row in enumerate(rows):
        world.reset(int(row["seed"]), Variation())
        operator.start_episode(int(row["seed"]), practice)
        for _ in range(int(row["frames"])):
            for role in CAMERAS:
                world.render(role)
            world.joint_positions()
            world.step(operator.act())
    seconds = time.perf_counter() - start
    world.close()
    return seconds


def bare_eval_loop(policy_folder: Path, seeds: list[int], max_steps: int) -> tuple[int, float]:
    """Steps and seconds of the same policy on the same seeds: env step, render, processors, select_action."""
    import torch

    from runner.lerobot_adapter import evaluation
    from runner.sim.env import PickPlaceEnv
    from runner.sim.world import Variation

    evaluation.set_threads(os.cpu_count() or 1)
    loaded = evaluation.load_policy(policy_folder, "cpu")
    instruction = "pick up the red cube and place it on the blue square"
    env = PickPlaceEnv(CAMERAS, 10, max_steps, {s: (instruction, Variation()) for s in seeds})
    steps, start = 0, time.perf_counter()
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        loaded.policy.reset()
        for _ in range(max_steps):
            batch = {f"observation.images.{r}": torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
                     for r, img in observation["pixels"].items()}  # fmt: skip
            batch["observation.state"] = torch.from_numpy(observation["agent_pos"])[None]
            batch["task"] = [instruction]
            with torch.inference_mode():
                action = loaded.postprocessor(loaded.policy.select_action(loaded.preprocessor(batch)))
            observation, _, success, truncated, _ = env.step(action[0].numpy())
            steps += 1
            if success or truncated:
                break
    seconds = time.perf_counter() - start
    env.close()
    return steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--demo", action="store_true", help="also time `runner pipeline experiment=demo` (make demo)")
    args = parser.parse_args()

    print("1. one 128x96 frame, software GL:")
    for role in CAMERAS:
        full, fast = ms_per_frame("full", role), ms_per_frame("fast", role)
        print(f"   {role:5s}: full {full:6.2f} ms · fast {fast:5.2f} ms · {full / fast:5.1f}x"
              " (goal: fast <= 5 ms, >= 10x)")  # fmt: skip
    ours, every_mesh = renderer_setup_ms()
    print(f"   a camera's renderer (per process and environment): {ours:.0f} ms, first frame included · every mesh"
          f" uploaded (MuJoCo's default): {every_mesh:.0f} ms · {every_mesh / ours:.1f}x")  # fmt: skip
    mj_rate, control_rate = physics_rates()
    print(f"2. physics: {mj_rate:,.0f} mj_step/s · {control_rate:,.0f} control steps/s at 10 Hz (no cameras)")

    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        run_dir, stage_s = record_run(outputs, ["episode.realtime=false", f"episode.num_episodes={args.episodes}"])
        rows = episodes_table(run_dir)
        frames = sum(int(r["frames"]) for r in rows)
        loop_s = sum(float(r["duration_s"]) for r in rows)
        bare_s = bare_record_loop(rows)
        print(f"3. record, realtime off, wrist + side 128x96, {len(rows)} episodes, {frames} frames:")
        print(f"   bare loop (step + render + operator): {frames / bare_s:6.1f} frames/s")
        print(f"   runner record, episode loops:        {frames / loop_s:6.1f} frames/s · {bare_s / loop_s:.2f}x")
        print(f"   runner record, whole stage:          {frames / stage_s:6.1f} frames/s · {bare_s / stage_s:.2f}x"
              " (saves and start-up included; goal >= 0.8x for the loops)")  # fmt: skip

        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
        run(["train", "experiment=sim_demo", "dataset_run=latest", "train.steps=20", "train.save_freq=20",
             "train.num_workers=0"], env)  # fmt: skip
        seeds = [10000, 10001, 10002]
        run(["eval", "experiment=sim_demo", "eval.checkpoint=last", f"eval.seeds=[{','.join(map(str, seeds))}]",
             f"eval.n_episodes={len(seeds)}", "eval.videos=0", "episode.episode_time_s=6"], env)  # fmt: skip
        [metrics_path] = outputs.rglob("eval/metrics.json")
        metrics = json.loads(metrics_path.read_text())
        with open(metrics_path.parent / "episodes.csv") as f:
            eval_steps = sum(int(r["steps"]) for r in csv.DictReader(f))
        bare_steps, bare_eval_s = bare_eval_loop(Path(metrics["policy_path"]), seeds, metrics["max_steps"])
        runner_rate, bare_rate = eval_steps / metrics["wall_s"], bare_steps / bare_eval_s
        print(f"4. eval, act_small, {len(seeds)} episodes: bare loop {bare_rate:6.1f} steps/s · "
              f"runner eval {runner_rate:6.1f} steps/s · {runner_rate / bare_rate:.2f}x (goal >= 0.8x)")  # fmt: skip

        run_dir, _ = record_run(outputs, ["episode.realtime=true", "episode.fps=30", "episode.num_episodes=2"])
        rows = episodes_table(run_dir)
        p50 = statistics.median(float(r["period_p50_ms"]) for r in rows)
        p99 = max(float(r["period_p99_ms"]) for r in rows)
        late = sum(int(r.get("late_frames") or 0) for r in rows)
        total = sum(int(r["frames"]) for r in rows)
        print(f"5. realtime 30 fps, wrist + side: wall period p50 {p50:.2f} ms · p99 {p99:.2f} ms "
              f"(goal within 2 ms of 33.33) · {late} late of {total} frames")  # fmt: skip

    if args.demo:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "RUNNER_OUTPUTS": str(Path(tmp) / "outputs"), "HF_HUB_OFFLINE": "1"}
            start = time.perf_counter()
            result = subprocess.run([RUNNER, "pipeline", "experiment=demo"], env=env, capture_output=True,
                                    text=True)  # fmt: skip
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(result.stderr[-3000:])
            [table] = Path(tmp).rglob("comparison.md")
            print(f"6. `runner pipeline experiment=demo`: {wall / 60:.1f} min wall (goal <= 6 min)")
            print(table.read_text())


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
