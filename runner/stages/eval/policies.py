"""What an evaluation evaluates, checked before anything moves: the matched seeds, the policy folder or train
run checkpoints (a command line naming several becomes a sweep, or one blinded session on a real robot), and
the policy's inputs against the cameras and fps it is evaluated with."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core import layout
from runner.core.command_line import compose_without_sweeps
from runner.core.context import StageContext
from runner.core.errors import ConfigError
from runner.episodes.scenarios import PlannedEpisode, plan_episodes
from runner.hub.refs import policy_folder
from runner.lerobot_adapter.checkpoints import IMAGES, PRETRAINED, checkpoint_step, train_checkpoints, training_dataset
from runner.schema.devices import SIM_ROBOT, is_simulated

HELD_OUT_SEED = 10_000

# Hydra flags that print instead of running (Hydra refuses them together with -m).
INSPECT_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve")


@dataclass
class PolicySource:
    folder: Path  # the LeRobot pretrained policy folder
    policy_run: str | None
    checkpoint_step: int | None
    hub: dict[str, Any] | None = None  # a Hub model: its repo, revision and the commit it resolved to

    def inputs(self) -> list[dict[str, Any]]:
        """run.json's ``inputs``: the Hub artefact evaluated, pinned to its commit."""
        return [self.hub] if self.hub else []


def eval_seeds(cfg: DictConfig) -> list[int]:
    """The matched seed list: ``eval.seeds`` (its first n_episodes), or held-out seeds 10000, 10001, ..."""
    n = cfg.eval.n_episodes  # >= 1: the schema's bound
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
    _require_listed_once(wanted)
    for step in wanted:
        checkpoint_step(step, available, train.id)
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


def policy_sources(cfg: DictConfig, ctx: StageContext) -> list[PolicySource]:
    """The policy folder, or the checkpoints of ``eval.checkpoint`` (a list only on a real robot)."""
    if OmegaConf.is_list(cfg.eval.checkpoint) and not cfg.eval.policy_path:
        steps = [str(step) for step in cfg.eval.checkpoint]
        _require_listed_once(steps)
        return [_policy_source(cfg, ctx, step) for step in steps]
    return [_policy_source(cfg, ctx, str(cfg.eval.checkpoint))]


def _require_listed_once(steps: list[str]) -> None:
    """A session or sweep over checkpoints names each once: the command line's expansion checks it before the
    launch, a job given the list itself (a resumed or replayed session) checks it again."""
    if not steps or len(set(steps)) != len(steps):
        raise ConfigError("eval.checkpoint", f"is {','.join(steps) or 'empty'}", "list each checkpoint once")


def _policy_source(cfg: DictConfig, ctx: StageContext, wanted: str) -> PolicySource:
    if cfg.eval.policy_path:
        folder, hub = policy_folder(cfg.eval.policy_path, "eval.policy_path")
        return PolicySource(folder, None, None, hub)
    train, available = train_checkpoints(ctx.outputs_root, str(cfg.policy_run))
    if wanted == "all":
        raise ConfigError("eval.checkpoint", "is all, which needs a sweep", "run `runner eval eval.checkpoint=all`")
    step = checkpoint_step(wanted, available, train.id)
    return PolicySource(available[step] / PRETRAINED, train.id, step)


def _camera_differences(cfg: DictConfig, folder: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings): what the policy cannot run without, and how eval differs from the training data."""
    from runner.lerobot_adapter.evaluation import policy_type_and_inputs

    _, inputs = policy_type_and_inputs(folder)
    roles = {name.rsplit(".", 1)[-1]: shape for name, shape in inputs.items() if name.startswith(IMAGES)}
    errors = [
        f"the policy needs a '{role}' camera, which cameras= does not have"
        for role in sorted(set(roles) - set(cfg.cameras))
    ]
    warnings = []
    dataset_root = training_dataset(folder)
    dataset_info = json.loads((dataset_root / layout.DATASET_INFO).read_text()) if dataset_root else None
    if dataset_info is not None:
        recorded = {
            name.rsplit(".", 1)[-1]: feature["shape"][:2]
            for name, feature in dataset_info["features"].items()
            if name.startswith(IMAGES)
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


def check_policy_type(ctx: StageContext, sources: list[PolicySource]) -> None:
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


def checked_inputs(cfg: DictConfig, sources: list[PolicySource]) -> list[str]:
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


@dataclass
class EvaluationPlan:
    """Everything an evaluation checked before its run starts: nothing on disk or on the arm yet."""

    seeds: list[int]
    episodes: list[PlannedEpisode]
    sources: list[PolicySource]
    warnings: list[str]  # input differences allowed by eval.camera_check=warn, logged in the run
    device: str


def plan_evaluation(cfg: DictConfig, ctx: StageContext) -> EvaluationPlan:
    """The matched episodes, the policies (one, or on a real robot the checkpoints of a blinded session) and
    the device, each checked against what the config asks."""
    from runner.lerobot_adapter.training import resolve_device

    seeds = eval_seeds(cfg)
    episodes = plan_episodes(cfg.task, seeds, count_key="eval.n_episodes")
    sources = policy_sources(cfg, ctx)
    check_policy_type(ctx, sources)
    warnings = checked_inputs(cfg, sources)
    return EvaluationPlan(seeds, episodes, sources, warnings, resolve_device(cfg.eval.device.value, "eval.device"))
