"""Dataclass schemas for every config group: the single source of truth for each key.

Each YAML option in ``conf/<group>/`` starts with ``defaults: [/schema/<group>/<name>@_here_]``, so
OmegaConf checks its keys and types against one of these classes at composition time: a misspelt key,
a wrong type or a value outside an enum fails before any stage runs, naming the key.

Robots, teleoperators, cameras and policies mirror the fields of LeRobot's own config dataclasses so that
the stages can hand them to ``draccus.decode`` unchanged; only runner-level keys (roles, operator
behaviour, schedules) are added here.
"""

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from runner.schema.devices import (
    CameraConfig,
    NoTeleopConfig,
    SceneConfig,
    ScriptedTeleopConfig,
    SimRobotConfig,
    SOFollowerConfig,
    SOLeaderConfig,
)
from runner.schema.fields import SceneCheckMode, bounded
from runner.schema.host import HostConfig
from runner.schema.learning import (
    ACTPolicyConfig,
    DiffusionPolicyConfig,
    EvalConfig,
    PipelineConfig,
    SmolVLAPolicyConfig,
    SweepConfig,
    TrainConfig,
)
from runner.schema.recording import DatasetConfig, EpisodeConfig, TaskConfig
from runner.schema.serving import ServeConfig

# --- paths and root ----------------------------------------------------------------------------------


@dataclass
class PathsConfig:
    # RUNNER_OUTPUTS, else <repo>/outputs; see runner.core.outputs.default_outputs_root.
    outputs: str = "${runner_outputs:}"


@dataclass
class RunnerConfig:
    """The root: one field per group. Polymorphic groups (robot, teleop, policy) are typed by option."""

    robot: Any = MISSING
    teleop: Any = MISSING
    # Cameras by role; roles are open-ended: a conf/cameras/<option>.yaml may name any roles it needs.
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    host: HostConfig = field(default_factory=HostConfig)
    task: TaskConfig = MISSING
    episode: EpisodeConfig = MISSING
    dataset: DatasetConfig = MISSING
    policy: Any = MISSING
    train: TrainConfig = MISSING
    eval: EvalConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Continue an earlier run of the same stage (an id, a prefix or latest) in its own directory.
    resume: str | None = None
    # The record run(s) a train run learns from: an id, a prefix, latest, a Hub dataset (hf:OWNER/NAME or
    # hf:OWNER/NAME@REVISION), or a list of them.
    dataset_run: Any = "latest"
    # The train run an eval run evaluates: an id, a prefix or latest (ignored with eval.policy_path).
    policy_run: str = "latest"
    # teleoperate: stop after this many seconds (null: when you press q or Ctrl-C).
    duration_s: float | None = bounded(None, gt=0)
    # teleoperate: a live view of the cameras and joints in Rerun (needs rerun-sdk: LeRobot's viz extra).
    display: bool = False
    sweep: SweepConfig = field(default_factory=SweepConfig)
    pipeline: PipelineConfig = MISSING
    serve: ServeConfig = MISSING
    # Before an evaluation (in simulation; on a real arm see the README): each camera's view against the
    # training recording's. refuse: a moved camera or a changed scene stops the session before it starts.
    scene_check: SceneCheckMode = SceneCheckMode.refuse
    scene: SceneConfig = field(default_factory=SceneConfig)


# Groups whose options have different fields pick their schema per option; the other groups are typed by
# their field in RunnerConfig.
OPTION_SCHEMAS: dict[str, dict[str, type]] = {
    "robot": {"sim": SimRobotConfig, "so_follower": SOFollowerConfig},
    "teleop": {"scripted": ScriptedTeleopConfig, "so_leader": SOLeaderConfig, "none": NoTeleopConfig},
    "policy": {"act": ACTPolicyConfig, "diffusion": DiffusionPolicyConfig, "smolvla": SmolVLAPolicyConfig},
}


@functools.cache  # a store converts every dataclass to a config again: a tenth of each composition
def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore under ``schema/<group>/<name>``, once per process."""
    store = ConfigStore.instance()
    store.store(name="runner_schema", node=RunnerConfig)
    for group, options in OPTION_SCHEMAS.items():
        for name, node in options.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def check_bounds(node: DictConfig | ListConfig, path: str = "") -> None:
    """Raise a ConfigError for the first value outside its schema field's bounds (see ``bounded``)."""
    from runner.core.errors import ConfigError

    if isinstance(node, ListConfig):
        for index, item in enumerate(node):
            if isinstance(item, DictConfig | ListConfig):
                check_bounds(item, f"{path}[{index}]")
        return
    schema = OmegaConf.get_type(node)
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    for key in node:
        full = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        try:
            value = node[key]
        except Exception:  # an interpolation in a section this stage does not read (checked where it is read)
            continue
        if isinstance(value, DictConfig | ListConfig):
            check_bounds(value, full)
            continue
        bounds = fields[key].metadata.get("bounds") if key in fields else None
        if bounds is None or value is None or isinstance(value, bool):
            continue
        if not math.isfinite(value):  # inf passes a lower bound, and nan fails every bound confusingly
            wanted = " and ".join(f"{r} {v:g}" for r, v in bounds.items() if v is not None)
            raise ConfigError(full, f"is {value}, not a finite number", f"use a finite value {wanted}")
        for relation, limit in bounds.items():
            if limit is None:
                continue
            holds = {">=": value >= limit, ">": value > limit, "<=": value <= limit}[relation]
            if not holds:
                wanted = " and ".join(f"{r} {v:g}" for r, v in bounds.items() if v is not None)
                raise ConfigError(full, f"is {value:g}, outside its range ({wanted})", f"use a value {wanted}")
