"""What an evaluation writes, alike in simulation and on a real robot: eval/episodes.csv as episodes finish,
the first episodes' videos, eval/metrics.json, and the headline in run.json (``runner compare`` reads them)."""

from __future__ import annotations

import logging
import statistics
from pathlib import Path

from runner.core import layout, outputs
from runner.core.run import Run
from runner.episodes.table import EpisodesTable
from runner.stages.eval.policies import PolicySource
from runner.stats import wilson_interval

log = logging.getLogger("runner.eval")

EPISODE_COLUMNS = ["episode", "seed", "scenario", "instruction", "success", "steps", "seconds", "sum_reward", "wall_s"]
# Remote inference adds each episode's link: observation-to-action latency, chunk round trip, underruns, rate;
# and whether it was scored or aborted by a lost link (then how long the arm went without an action).
LINK_COLUMNS = ["status", "latency_ms_p50", "latency_ms_p99", "chunk_rtt_ms_p50", "underruns", "control_hz",
                "stopped_after_s"]  # fmt: skip
REMOTE_COLUMNS = [*EPISODE_COLUMNS, *LINK_COLUMNS]
# A real-robot session adds where the episode fell in the blinded order and how the operator ended it.
# and the control loop's own figures: steps with no action to send, and the rate it achieved.
ROBOT_COLUMNS = [*EPISODE_COLUMNS, "trial", "ended_by", "redos", "clamped_steps", "underruns", "control_hz"]


def aborted_row(planned, aborted: dict, **extra) -> dict:
    """The row of an episode whose link was lost: it has no success, and runs again on reconnecting."""
    return {"episode": aborted["episode"], "seed": planned.seed, "scenario": planned.scenario,
            "instruction": planned.instruction, "steps": aborted["steps"], "status": "aborted",
            "stopped_after_s": aborted["stopped_after_s"], **extra}  # fmt: skip


def record_episode(table: EpisodesTable, out: Path, index: int, planned, outcome, fps: int, **extra) -> None:
    """One finished episode: its row in episodes.csv, and its video when its frames were kept."""
    from runner.lerobot_adapter import evaluation

    table.append({
        "episode": index, "seed": outcome.seed, "scenario": planned.scenario, "instruction": planned.instruction,
        "success": outcome.success, "steps": outcome.steps, "seconds": round(outcome.steps / fps, 3),
        "sum_reward": round(outcome.sum_reward, 4), "wall_s": round(outcome.wall_s, 3), **extra,
    })  # fmt: skip
    if outcome.frames:
        videos = out / layout.VIDEOS_DIR
        videos.mkdir(exist_ok=True)
        evaluation.write_episode_video(videos / f"episode_{index:03d}_seed{outcome.seed}.mp4", outcome.frames, fps)


def begin(run: Run, source: PolicySource, warnings: list[str]) -> Path:
    """Record the policy and checks in run.json; return the run's eval/ folder."""
    from runner.lerobot_adapter import evaluation

    for warning in warnings:
        log.warning("%s (the policy sees other inputs than it was trained on; eval.camera_check=warn)", warning)
    policy_type, _ = evaluation.policy_type_and_inputs(source.folder)
    run.update(
        policy={
            "run": source.policy_run,
            "checkpoint_step": source.checkpoint_step,
            "path": str(source.folder),
            "type": policy_type,
        },
        checks={"cameras": warnings or "match"},
    )
    if source.hub:
        run.update(inputs=source.inputs())
    out = run.dir / layout.EVAL_DIR
    out.mkdir()
    run.add_artifact(layout.EVAL_DIR)
    return out


def summarize(run: Run, source: PolicySource, outcomes: list, plan: list, extra: dict) -> dict:
    """eval/metrics.json (the same keys in simulation and on a robot) and the headline in run.json."""
    from runner.lerobot_adapter.checkpoints import validation_loss
    from runner.lerobot_adapter.evaluation import policy_type_and_inputs

    fps = extra["fps"]
    successes = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(successes, len(outcomes))
    metrics = {
        "success_rate": successes / len(outcomes),
        "n_episodes": len(outcomes),
        "successes": successes,
        "ci95": [round(lo, 4), round(hi, 4)],
        "mean_sum_reward": round(statistics.fmean(o.sum_reward for o in outcomes), 4),
        "mean_episode_s": round(statistics.fmean(o.steps for o in outcomes) / fps, 3),
        "checkpoint_step": source.checkpoint_step,
        # The checkpoint's loss on its training's held-out episodes (train.val_split), or None.
        "val_loss": validation_loss(source.folder),
        "policy_run": source.policy_run,
        "seeds": [p.seed for p in plan],
        "policy_path": str(source.folder),
        "policy_hub": source.hub,
        "policy_type": policy_type_and_inputs(source.folder)[0],
        "scenarios": sorted({p.scenario for p in plan}),
        **extra,
    }
    outputs.write_json_atomic(run.dir / layout.EVAL_METRICS_JSON, metrics)
    run.update(metrics={k: metrics[k] for k in ("success_rate", "n_episodes", "successes", "ci95", "checkpoint_step")})
    return metrics
