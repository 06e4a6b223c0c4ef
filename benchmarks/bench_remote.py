"""Remote inference figures: the same policy in-process vs on a `runner serve` server over loopback, one run.

Reference: `runner eval` with the policy in the eval process (eval.inference=local). Against it, the same
checkpoint, seeds and episodes through LeRobot's async-inference protocol to a server on 127.0.0.1:
1. LeRobot's defaults: a new observation when the queue is half empty (chunk_size_threshold 0.5), LeRobot's
   server floor of 1/30 s per chunk (serve.inference_latency_s).
2. Lockstep: a new chunk only when the queue is empty, chunks as long as the policy's n_action_steps; the
   episodes must equal the local ones exactly (printed).
3. Lockstep without the server's latency floor (serve.inference_latency_s=0): what the protocol itself costs.
For each: episodes/s, the ratio to local, observation-to-action latency p50/p99, chunk round trip,
underruns per episode and the achieved control rate (from the runs' metrics.json and episodes.csv).

Records a small sim_demo dataset and trains the demo's ACT for a few steps first.
Usage: .venv/bin/python benchmarks/bench_remote.py [--episodes 4] [--episode-s 5]
"""

import argparse
import csv
import json
import os
import signal
import tempfile
from pathlib import Path

from timed_runner import run, serve


def _latest_eval(outputs: Path) -> Path:
    return max(outputs.rglob("eval/metrics.json"), key=lambda p: p.stat().st_mtime).parent


def _episodes(eval_dir: Path) -> list[tuple]:
    with open(eval_dir / "episodes.csv", newline="") as f:
        rows = csv.DictReader(f)
        return [(r["seed"], r["success"], r["steps"], r["sum_reward"]) for r in rows if r.get("status") != "aborted"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--episode-s", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Path(tmp) / "outputs"
        env = {**os.environ, "RUNNER_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
        run(["record", "experiment=sim_demo", "episode.num_episodes=2"], env)
        run(["train", "experiment=sim_demo", "train.steps=8", "train.save_freq=8", "train.num_workers=0"], env)
        evaluate = ["eval", "experiment=sim_demo", "eval.checkpoint=last", f"eval.n_episodes={args.episodes}",
                    f"episode.episode_time_s={args.episode_s}", "eval.videos=0"]  # fmt: skip
        local_s = run(evaluate, env)
        local = _latest_eval(outputs)
        n_action_steps = json.loads(next(outputs.rglob("pretrained_model/config.json")).read_text())["n_action_steps"]
        lockstep = ["eval.chunk_size_threshold=0", f"eval.actions_per_chunk={n_action_steps}"]
        cases = [("LeRobot defaults", [], []), ("lockstep", [], lockstep),
                 ("lockstep, no latency floor", ["serve.inference_latency_s=0"], lockstep)]  # fmt: skip
        local_metrics = json.loads((local / "metrics.json").read_text())
        steps = args.episodes * args.episode_s * 10
        print(f"ACT, sim_demo (wrist + side 128x96, 10 Hz), {args.episodes} episodes x {args.episode_s:g} s, "
              f"{os.cpu_count()} cores, server on loopback")  # fmt: skip
        print(f"  {'in-process (reference)':30s} {local_metrics['episodes_per_s']:.3f} episodes/s "
              f"({local_s:.1f} s for the command)")  # fmt: skip
        for name, serve_overrides, eval_overrides in cases:
            server, address = serve(env, *serve_overrides)
            try:
                seconds = run([*evaluate, "eval.inference=remote", f"eval.server={address}", *eval_overrides], env)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
            remote = _latest_eval(outputs)
            m = json.loads((remote / "metrics.json").read_text())
            same = _episodes(remote) == _episodes(local)
            print(f"  {name:30s} {m['episodes_per_s']:.3f} episodes/s = "
                  f"{m['episodes_per_s'] / local_metrics['episodes_per_s']:.2f}x in-process ({seconds:.1f} s) · "
                  f"obs->action p50 {m['latency_ms_p50']} ms p99 {m['latency_ms_p99']} ms · chunk round trip "
                  f"p50 {m['chunk_rtt_ms_p50']} ms · {m['underruns'] / args.episodes:.1f} underruns/episode "
                  f"of {steps / args.episodes:.0f} steps · {m['control_hz']} Hz · "
                  f"per-episode outcomes {'equal to' if same else 'differ from'} in-process")  # fmt: skip


if __name__ == "__main__":
    main()
