"""How long a scene check takes before a session: the goal is under 2 s for two cameras on 2 CPU cores.

Records one sim_demo episode (wrist + side at 128x96) with `runner record`, then times, in this process:

1. The whole check a simulated eval runs (`runner.scene.sources.check_in_sim`): decode the recording's first
   frames, build and draw the world from that episode's start state, compare both cameras.
2. Its parts: decoding the reference frames, drawing the live ones, and `compare` per camera, at the recorded
   128x96 and at a real camera's 640x480 (the sim's side camera drawn at that size, moved 1 cm).

The reference it is measured against is the goal itself (2 s for two cameras). Figures only, never asserted.
Usage: .venv/bin/python benchmarks/bench_scene.py [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 2.0


def _median_s(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(root), "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "runner", "record", "experiment=sim_demo", "episode.num_episodes=1",
                        "episode.episode_time_s=1", "episode.realtime=false"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        [dataset] = list(root.rglob("dataset"))
        from hydra import compose, initialize_config_dir

        from runner.core.conf import CONF_DIR, register_resolvers
        from runner.scene.compare import compare
        from runner.scene.sources import check_in_sim, recorded_view, sim_view
        from runner.schema import register_schemas
        from runner.sim.world import PickPlaceWorld, Variation

        register_schemas()
        register_resolvers()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["experiment=sim_demo"])
        check_in_sim(cfg, dataset)  # warm: the first GL context and the first decode
        whole = _median_s(lambda: check_in_sim(cfg, dataset), args.repeats)
        decode = _median_s(lambda: recorded_view(dataset), args.repeats)
        draw = _median_s(lambda: sim_view(cfg, 0), args.repeats)
        recorded = recorded_view(dataset)
        live = sim_view(cfg, 0)
        per_camera = {role: _median_s(lambda r=role: compare(recorded.frames[r], live[r]), args.repeats)
                      for role in sorted(live)}  # fmt: skip
        large = {}
        for moves in (None, {"side": [0.01, 0, 0]}):
            world = PickPlaceWorld({"side": (640, 480)}, control_dt=0.1, camera_moves=moves)
            world.reset(0, Variation())
            large[bool(moves)] = world.render("side")
            world.close()
        large_s = _median_s(lambda: compare(large[False], large[True]), args.repeats)
    print(f"scene check before a simulated eval, 2 cameras (wrist, side) at 128x96: {whole * 1000:.0f} ms "
          f"(goal {GOAL_S:.0f} s: {whole / GOAL_S:.2f}x of it)")  # fmt: skip
    print(f"  decode the recording's first frames: {decode * 1000:.0f} ms; draw the world now: {draw * 1000:.0f} ms")
    for role, seconds in per_camera.items():
        print(f"  compare {role} at 128x96: {seconds * 1000:.1f} ms")
    print(f"compare one 640x480 camera (the side camera moved 1 cm): {large_s * 1000:.0f} ms; two such cameras "
          f"{2 * large_s / GOAL_S:.2f}x of the goal")  # fmt: skip


if __name__ == "__main__":
    main()
