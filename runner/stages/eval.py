"""``runner eval``: roll a checkpoint out in the simulated world on a matched list of seeds.

Every episode's start state and instruction come from its seed and the task's scenarios, so every
checkpoint of a comparison faces exactly the same episodes. The policy is a train run's checkpoint
(``policy_run=`` + ``eval.checkpoint=step|last``) or any LeRobot policy folder (``eval.policy_path=``);
``eval.checkpoint=all`` becomes a sweep with one job per checkpoint. Results: ``eval/metrics.json``,
``eval/episodes.csv`` (written as episodes finish), videos of the first episodes, optional rollouts dataset.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from runner import outputs
from runner.app import StageContext, compose_without_sweeps, parallel_jobs
from runner.errors import ConfigError
from runner.lerobot_adapter.checkpoints import checkpoints
from runner.scenarios import plan_episodes
from runner.stats import wilson_interval

log = logging.getLogger("runner.eval")

EVAL_DIR = "eval"
METRICS_JSON = "metrics.json"
EPISODES_CSV = "episodes.csv"
EPISODE_COLUMNS = ["episode", "seed", "scenario", "instruction", "success", "steps", "seconds", "sum_reward", "wall_s"]
HELD_OUT_SEED = 10_000
# Hydra flags that print instead of running (Hydra refuses them together with -m).
INSPECT_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve")
TRAIN_DIR = "train"
LINEAGE = "runner_lineage.json"


@dataclass
class PolicySource:
    folder: Path  # the LeRobot pretrained policy folder
    policy_run: str | None
    checkpoint_step: int | None


def eval_seeds(cfg: DictConfig) -> list[int]:
    """The matched seed list: ``eval.seeds`` (its first n_episodes), or held-out seeds 10000, 10001, ..."""
    n = cfg.eval.n_episodes
    if n < 1:
        raise ConfigError("eval.n_episodes", f"is {n}", "evaluate at least one episode")
    if cfg.eval.seeds is None:
        return [HELD_OUT_SEED + i for i in range(n)]
    seeds = [int(s) for s in cfg.eval.seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("eval.seeds", f"repeats seeds: {seeds}", "give each episode its own seed")
    if n > len(seeds):
        raise ConfigError(
            "eval.n_episodes", f"is {n}, but eval.seeds lists only {len(seeds)}", "list more seeds, or lower n_episodes"
        )
    return seeds[:n]


def train_checkpoints(outputs_root: Path, ref: str) -> tuple[outputs.RunInfo, dict[int, Path]]:
    """The train run ``policy_run`` names and its complete checkpoints by step; a miss names the key."""
    try:
        train = outputs.resolve_run(outputs_root, ref, stage="train")
    except outputs.RunReferenceError as error:
        raise ConfigError("policy_run", str(error).rstrip("."), "give a train run id (see `runner runs`)") from None
    available = checkpoints(train.path / TRAIN_DIR)
    if not available:
        raise ConfigError("policy_run", f"names train run {train.id}, which has no complete checkpoint", "train first")
    return train, available


def expand_checkpoints(args: list[str]) -> list[str]:
    """Before anything runs: ``eval.checkpoint=all`` becomes one sweep job per checkpoint, and the steps a
    command line names are checked against the train run's checkpoints (a sweep would otherwise create its
    directory first and fail job by job)."""
    if any(a in INSPECT_FLAGS or a.startswith("--cfg=") for a in args):
        return args  # showing the config runs nothing, so there is nothing to expand or check
    composed = compose_without_sweeps(args)
    if composed is None:
        return args
    cfg, swept = composed
    if cfg.eval.policy_path:
        return args
    given = [a.split("=", 1)[1] for a in args if a.startswith("eval.checkpoint=")]
    wanted = given[-1].split(",") if "eval.checkpoint" in swept else [str(cfg.eval.checkpoint)]
    if "policy_run" in swept:
        if "all" in wanted:
            raise ConfigError(
                "eval.checkpoint",
                "is all while policy_run is swept: each train run has its own checkpoints",
                "sweep explicit steps (eval.checkpoint=2000,4000) or use eval.checkpoint=last",
            )
        return args
    train, available = train_checkpoints(Path(cfg.paths.outputs), str(cfg.policy_run))
    steps = sorted(available)
    if wanted != ["all"]:
        unknown = [w for w in wanted if w != "last" and not (w.isdigit() and int(w) in steps)]
        if unknown and all(w.replace(" ", "").isalnum() for w in wanted):  # plain values, not range(...)
            raise ConfigError(
                "eval.checkpoint",
                f"names {', '.join(unknown)}, not a checkpoint of train run {train.id} (available: "
                f"{', '.join(map(str, steps))})",
                "pick from those steps, last, or all",
            )
        return args
    print(
        f"runner eval: eval.checkpoint=all -> a sweep over the {len(steps)} checkpoints of {train.id}: "
        f"{', '.join(map(str, steps))}",
        file=sys.stderr,
    )
    kept = [a for a in args if not a.startswith(("eval.checkpoint=", "policy_run="))]
    pinned = [f"policy_run={train.id}", f"eval.checkpoint={','.join(map(str, steps))}"]
    return [*kept, *pinned] if "-m" in kept or "--multirun" in kept else ["-m", *kept, *pinned]


def _policy_source(cfg: DictConfig, ctx: StageContext) -> PolicySource:
    from runner.lerobot_adapter.evaluation import is_policy_folder

    if cfg.eval.policy_path:
        folder = Path(cfg.eval.policy_path).expanduser()
        if not is_policy_folder(folder) and is_policy_folder(folder / "pretrained_model"):
            folder = folder / "pretrained_model"
        if not is_policy_folder(folder):
            raise ConfigError(
                "eval.policy_path",
                f"is {folder}, which is not a LeRobot policy folder (config.json and model.safetensors)",
                "give a checkpoint's pretrained_model folder, or a policy downloaded with `huggingface-cli download`",
            )
        return PolicySource(folder.resolve(), None, None)
    train, available = train_checkpoints(ctx.outputs_root, str(cfg.policy_run))
    wanted = str(cfg.eval.checkpoint)
    if wanted == "all":
        raise ConfigError("eval.checkpoint", "is all, which needs a sweep", "run `runner eval eval.checkpoint=all`")
    if wanted == "last":
        step = max(available)
    elif wanted.isdigit() and int(wanted) in available:
        step = int(wanted)
    else:
        raise ConfigError(
            "eval.checkpoint",
            f"is {wanted}, which is not a checkpoint of train run {train.id} (available: "
            f"{', '.join(map(str, available))})",
            "pick one of those steps, last, or all",
        )
    return PolicySource(available[step] / "pretrained_model", train.id, step)


def _camera_differences(cfg: DictConfig, folder: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings): what the policy cannot run without, and how eval differs from the training data."""
    from runner.lerobot_adapter.evaluation import policy_type_and_inputs

    _, inputs = policy_type_and_inputs(folder)
    roles = {name.rsplit(".", 1)[-1]: shape for name, shape in inputs.items() if name.startswith("observation.images.")}
    errors = [
        f"the policy needs a '{role}' camera, which cameras= does not have"
        for role in sorted(set(roles) - set(cfg.cameras))
    ]
    warnings = []
    lineage = folder / LINEAGE
    dataset_info = None
    if lineage.exists():
        roots = json.loads(lineage.read_text()).get("dataset_roots") or []
        info_path = Path(roots[0]) / "meta" / "info.json" if roots else None
        if info_path is not None and info_path.exists():
            dataset_info = json.loads(info_path.read_text())
    if dataset_info is not None:
        recorded = {
            name.rsplit(".", 1)[-1]: feature["shape"][:2]
            for name, feature in dataset_info["features"].items()
            if name.startswith("observation.images.")
        }
        for role in sorted(set(recorded) | set(cfg.cameras)):
            now = [cfg.cameras[role].height, cfg.cameras[role].width] if role in cfg.cameras else None
            then = recorded.get(role)
            if now != then:
                said = "absent" if then is None else f"{then[1]}x{then[0]}"
                warnings.append(
                    f"camera '{role}': recorded {said}, evaluating {'absent' if now is None else f'{now[1]}x{now[0]}'}"
                )
        if dataset_info["fps"] != cfg.episode.fps:
            warnings.append(f"fps: recorded at {dataset_info['fps']}, evaluating at episode.fps={cfg.episode.fps}")
    else:
        for role, shape in roles.items():
            if role in cfg.cameras and [cfg.cameras[role].height, cfg.cameras[role].width] != shape[1:]:
                warnings.append(f"camera '{role}': the policy was trained on {shape[2]}x{shape[1]} images")
    return errors, warnings


def _size(height_width: list[int] | None) -> str:
    return "absent" if height_width is None else f"{height_width[1]}x{height_width[0]}"


class EpisodeLog:
    """eval/episodes.csv, rewritten atomically as each episode finishes."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        outputs.write_csv_atomic(self.path, EPISODE_COLUMNS, self.rows)


def evaluate(cfg: DictConfig, ctx: StageContext) -> dict:
    if cfg.robot.type != "sim_so101":
        raise ConfigError(
            "robot",
            f"is {cfg.robot.type}: eval rolls policies out in simulation, and a real-arm protocol is not built yet",
            "use robot=sim_so101 (the default)",
        )
    if cfg.eval.batch_size < 1 or cfg.eval.videos < 0:
        key = "eval.batch_size" if cfg.eval.batch_size < 1 else "eval.videos"
        raise ConfigError(key, f"is {cfg.eval[key.split('.')[1]]}", "give a batch of at least 1 and 0 or more videos")
    seeds = eval_seeds(cfg)
    plan = plan_episodes(cfg.task, seeds, count_key="eval.n_episodes")
    source = _policy_source(cfg, ctx)
    errors, warnings = _camera_differences(cfg, source.folder)
    if errors:
        raise ConfigError("cameras", "; ".join(errors), "evaluate with the cameras the policy was trained with")
    if warnings and cfg.eval.camera_check.value == "error":
        raise ConfigError(
            "cameras",
            f"differ from the training dataset's: {'; '.join(warnings)}",
            "use the recording's cameras and fps, or set eval.camera_check=warn to evaluate anyway",
        )
    from runner.lerobot_adapter import evaluation, training
    from runner.sim.env import PickPlaceEnv
    from runner.sim.world import Variation

    try:
        device = training.resolve_device(cfg.eval.device.value)
    except ValueError as error:
        raise ConfigError("eval.device", str(error), "use eval.device=auto or cpu") from None

    run = ctx.start_run(parents=[source.policy_run] if source.policy_run else [])
    for warning in warnings:
        log.warning("%s (the policy sees other images than it was trained on)", warning)
    threads = max(1, (os.cpu_count() or 1) // parallel_jobs())
    evaluation.set_threads(threads)
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
    out = run.dir / EVAL_DIR
    out.mkdir()
    run.add_artifact(EVAL_DIR)
    loaded = evaluation.load_policy(source.folder, device)
    fps = cfg.episode.fps
    max_steps = max(1, round(cfg.episode.episode_time_s * fps))
    sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
    episodes = {p.seed: (p.instruction, Variation(**p.variation)) for p in plan}
    table = EpisodeLog(out / EPISODES_CSV)
    videos = out / "videos"

    def on_episode(index: int, outcome) -> None:
        planned = plan[index]
        table.add({
            "episode": index, "seed": outcome.seed, "scenario": planned.scenario, "instruction": planned.instruction,
            "success": outcome.success, "steps": outcome.steps, "seconds": round(outcome.steps / fps, 3),
            "sum_reward": round(outcome.sum_reward, 4), "wall_s": round(outcome.wall_s, 3),
        })  # fmt: skip
        if outcome.frames:
            videos.mkdir(exist_ok=True)
            evaluation.write_episode_video(videos / f"episode_{index:03d}_seed{outcome.seed}.mp4", outcome.frames, fps)
        log.info(
            "episode %d/%d · seed %d · %s · %s in %d steps · reward %.2f",
            index + 1, len(plan), outcome.seed, planned.scenario, "success" if outcome.success else "failure",
            outcome.steps, outcome.sum_reward,
        )  # fmt: skip

    log.info(
        "evaluating %s on %d episodes (seeds %s) · %s · %d torch threads",
        source.folder, len(plan), seeds, device, threads,
    )  # fmt: skip
    started = time.perf_counter()
    outcomes = evaluation.rollout(
        loaded,
        lambda: PickPlaceEnv(sizes, fps, max_steps, episodes),
        seeds,
        cfg.eval.batch_size,
        cfg.eval.videos,
        out / "rollouts" if cfg.eval.save_rollouts else None,
        on_episode,
    )
    wall = time.perf_counter() - started
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
        "policy_run": source.policy_run,
        "seeds": seeds,
        "policy_path": str(source.folder),
        "policy_type": policy_type,
        "scenarios": sorted({p.scenario for p in plan}),
        "fps": fps,
        "max_steps": max_steps,
        "device": device,
        "wall_s": round(wall, 2),
        "episodes_per_s": round(len(outcomes) / wall, 4),
    }
    outputs.write_json_atomic(out / METRICS_JSON, metrics)
    if cfg.eval.save_rollouts:
        run.add_artifact(f"{EVAL_DIR}/rollouts")
    run.update(metrics={k: metrics[k] for k in ("success_rate", "n_episodes", "successes", "ci95", "checkpoint_step")})
    log.info(
        "success %d/%d = %.0f %% (95 %% CI %.0f-%.0f %%) · mean reward %.2f · %.2f episodes/s -> %s",
        successes, len(outcomes), 100 * metrics["success_rate"], 100 * lo, 100 * hi, metrics["mean_sum_reward"],
        metrics["episodes_per_s"], out / METRICS_JSON,
    )  # fmt: skip
    return metrics
