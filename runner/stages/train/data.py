"""What a new training learns from, checked before its run starts: the record runs and Hub datasets
``dataset_run`` names (merged in order), the episodes ``train.*`` selects from them, and LeRobot's policy config
(fine-tuned from ``policy.pretrained_path``: a policy folder or a Hub model)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.core import layout
from runner.core.context import StageContext
from runner.core.errors import ConfigError
from runner.hub import refs
from runner.lerobot_adapter.checkpoints import IMAGES

IMAGE_POLICIES = ("act", "diffusion", "smolvla")
GIVE_DATASET = "give a record or dataset run (dataset_run=latest or an id) or a Hub dataset (dataset_run=hf:OWNER/NAME)"


@dataclass(frozen=True)
class DatasetSource:
    """One dataset a training reads: a record run's, or a Hub dataset pulled into the local cache."""

    name: str  # the record run id, or hf:OWNER/NAME@COMMIT
    root: Path
    run_id: str | None = None
    pulled: refs.Pulled | None = None

    def info(self) -> dict:
        path = self.root / layout.DATASET_INFO
        if not path.exists():
            what = (
                f"record run {self.name}, which has no dataset"
                if self.run_id
                else (f"{self.name}, which is not a LeRobot dataset (no meta/info.json)")
            )
            raise ConfigError("dataset_run", f"names {what}", "record one first" if self.run_id else GIVE_DATASET)
        return json.loads(path.read_text())

    def episode_rows(self) -> list[dict]:
        """runner's per-episode table (scenario, success), which a dataset recorded elsewhere does not have."""
        table = self.root / layout.DATASET_EPISODES_CSV
        if not table.exists():
            return []
        with open(table) as f:
            return [r for r in csv.DictReader(f) if r["kept"] == "True"]


@dataclass
class TrainingData:
    sources: list[DatasetSource]
    episodes: list[int] | None  # None: all of them
    policy: Any  # LeRobot's policy config
    inputs: list[dict] = field(default_factory=list)  # the Hub artefacts pulled, pinned (run.json's inputs)

    @property
    def run_ids(self) -> list[str]:
        return [s.run_id for s in self.sources if s.run_id]

    def lineage(self) -> dict[str, Any]:
        return {
            "dataset_runs": self.run_ids,
            "hub_datasets": [s.pulled.record() for s in self.sources if s.pulled],
            "dataset_roots": [str(s.root) for s in self.sources],
            "episodes": self.episodes,
        }


def _dataset_refs(cfg: DictConfig) -> list[str]:
    given = cfg.dataset_run
    if isinstance(given, ListConfig | list):
        if not given:
            raise ConfigError("dataset_run", "is an empty list", GIVE_DATASET)
        return [str(r) for r in given]
    if given is None:
        raise ConfigError("dataset_run", "is not set", GIVE_DATASET)
    return [str(given)]


def dataset_sources(cfg: DictConfig, ctx: StageContext) -> list[DatasetSource]:
    sources = []
    for ref in _dataset_refs(cfg):
        if refs.is_hub_ref(ref):
            pulled = refs.pull(ref, "dataset", "dataset_run")
            sources.append(DatasetSource(pulled.record()["pinned"], pulled.folder, pulled=pulled))
        else:
            run = ctx.find_run("dataset_run", ref, layout.DATASET_STAGES)
            sources.append(DatasetSource(run.id, run.path / layout.DATASET_DIR, run_id=run.id))
    return sources


def select_episodes(rows: list[dict], total: int, train: DictConfig) -> list[int] | None:
    """Dataset episode indices for train.scenarios / only_successful / episodes; None means all of them."""
    if not (train.scenarios or train.only_successful or train.episodes is not None):
        return None
    chosen = list(range(total))
    if train.episodes is not None:
        bad = [e for e in train.episodes if not 0 <= e < total]
        if bad:
            raise ConfigError("train.episodes", f"has indices outside 0..{total - 1}: {bad}", "pick recorded episodes")
        chosen = [e for e in chosen if e in set(train.episodes)]
    by_index = {int(r["dataset_episode"]): r for r in rows}
    if train.scenarios:
        known = sorted({r["scenario"] for r in rows})
        unknown = sorted(set(train.scenarios) - set(known))
        if unknown:
            raise ConfigError("train.scenarios", f"names unknown scenarios {unknown}", f"recorded ones: {known}")
        chosen = [e for e in chosen if by_index.get(e, {}).get("scenario") in set(train.scenarios)]
    if train.only_successful:
        chosen = [e for e in chosen if by_index.get(e, {}).get("success") == "True"]
    if not chosen:
        raise ConfigError("train.episodes", "selects no episode", "loosen train.scenarios / only_successful / episodes")
    return chosen


def _check_validation_split(val_split: float, rows: list[dict], episodes: list[int]) -> None:
    """LeRobot holds out the last ceil(n x val_split) episodes of each task and fails mid-run when none is left
    to train on: refused here instead."""
    if val_split <= 0:
        return
    task_of = {int(r["dataset_episode"]): r.get("instruction", "") for r in rows}
    per_task: dict[str, int] = {}
    for episode in episodes:
        per_task[task_of.get(episode, "")] = per_task.get(task_of.get(episode, ""), 0) + 1
    held_out = sum(math.ceil(n * val_split) for n in per_task.values())
    if held_out >= len(episodes):
        raise ConfigError(
            "train.val_split",
            f"is {val_split:g}: it would hold out all {len(episodes)} episodes (the last ceil(n x val_split) of "
            f"each of {len(per_task)} task string(s)), leaving none to train on",
            "lower it, or train on more episodes",
        )


def _check_camera_names(cfg: DictConfig, policy: dict[str, Any], info: dict) -> None:
    """A pretrained model reads the camera names it was trained with: the recording's roles, renamed by
    policy.camera_names, must be exactly those (LeRobot would fail mid-start, or train on the wrong view)."""
    from runner.lerobot_adapter.evaluation import policy_type_and_inputs

    names = dict(cfg.policy.get("camera_names") or {})
    if not policy.get("pretrained_path"):
        if names:
            raise ConfigError("policy.camera_names", "renames cameras for a pretrained model, and "
                              "policy.pretrained_path is not set", "set it, or drop camera_names")  # fmt: skip
        return
    roles = sorted(k.removeprefix(IMAGES) for k in info["features"] if k.startswith(IMAGES))
    unknown = sorted(set(names) - set(roles))
    if unknown:
        raise ConfigError("policy.camera_names", f"names cameras {unknown} the recording does not have",
                          f"its cameras: {roles}")  # fmt: skip
    _, model_inputs = policy_type_and_inputs(Path(policy["pretrained_path"]))
    expected = sorted(k.removeprefix(IMAGES) for k in model_inputs if k.startswith(IMAGES))
    fed = sorted(names.get(role, role) for role in roles)
    if fed != expected:
        mapping = ", ".join(f"{r} -> {names.get(r, r)}" for r in roles)
        raise ConfigError(
            "policy.camera_names",
            f"feeds the pretrained model cameras {fed} ({mapping}), and it was trained with {expected}",
            f"map each recorded role to one of {expected}, e.g. policy.camera_names={{{roles[0]}: {expected[0]}}}"
            if roles and expected
            else "record with the cameras the model expects",
        )


def _check_policy_inputs(cfg: DictConfig, infos: list[dict], ids: list[str]) -> None:
    features = infos[0]["features"]
    for info, run_id in zip(infos[1:], ids[1:], strict=True):
        if info["features"].keys() != features.keys() or info["fps"] != infos[0]["fps"]:
            raise ConfigError(
                "dataset_run", f"mixes datasets with different features or fps ({ids[0]} vs {run_id})", "train on one"
            )
    images = [k for k, f in features.items() if f["dtype"] in ("video", "image")]
    if cfg.policy.type in IMAGE_POLICIES and not images:
        raise ConfigError(
            "dataset_run",
            f"has no camera images, and policy={cfg.policy.type} needs at least one",
            "record with cameras, or pick a dataset that has them",
        )
    if cfg.policy.get("lora_rank") and not cfg.policy.pretrained_path:
        raise ConfigError(
            "policy.lora_rank",
            "fine-tunes adapters on a pretrained policy, and policy.pretrained_path is not set",
            "set policy.pretrained_path (a policy folder or hf:OWNER/NAME), or drop lora_rank to train from scratch",
        )
    if cfg.policy.type == "smolvla":
        folder = Path(cfg.policy.vlm_path)
        if not (folder / "config.json").exists():
            raise ConfigError(
                "policy.vlm_path",
                f"is {folder}, which is not a model folder (no config.json)",
                "download the VLM once on a connected machine (e.g. `huggingface-cli download "
                "HuggingFaceTB/SmolVLM2-500M-Video-Instruct --local-dir <folder>`) and point policy.vlm_path at it",
            )


def _pretrained(cfg: DictConfig) -> tuple[dict[str, Any], list[dict]]:
    """The policy section with ``pretrained_path`` a local folder (a Hub model pulled first), and what was pulled."""
    policy = OmegaConf.to_container(cfg.policy, resolve=True)
    if not policy.get("pretrained_path"):
        return policy, []
    folder, hub = refs.policy_folder(policy["pretrained_path"], "policy.pretrained_path")
    return {**policy, "pretrained_path": str(folder)}, [hub] if hub else []


def training_data(cfg: DictConfig, ctx: StageContext, device: str) -> TrainingData:
    """A new training's datasets, the episodes it learns from, and LeRobot's policy config: all checked."""
    from runner.lerobot_adapter import training

    sources = dataset_sources(cfg, ctx)
    infos = [s.info() for s in sources]
    _check_policy_inputs(cfg, infos, [s.name for s in sources])
    rows, offset = [], 0  # merged datasets number their episodes on, in the order given
    for source, info in zip(sources, infos, strict=True):
        rows += [{**row, "dataset_episode": str(int(row["dataset_episode"]) + offset)} for row in source.episode_rows()]
        offset += info["total_episodes"]
    episodes = select_episodes(rows, offset, cfg.train)
    _check_validation_split(cfg.train.val_split, rows, episodes if episodes is not None else list(range(offset)))
    policy_fields, inputs = _pretrained(cfg)
    _check_camera_names(cfg, policy_fields, infos[0])
    try:
        policy = training.policy_config(policy_fields, device)
    except Exception as error:  # LeRobot's own checks of its policy config (draccus, __post_init__)
        cause = error.__cause__ or error
        raise ConfigError(
            "policy",
            f"is refused by LeRobot's {cfg.policy.type} config: {cause}",
            "fix the policy.* value it names (`runner train --cfg job` shows them)",
        ) from None
    pulled = [s.pulled.record() for s in sources if s.pulled]
    return TrainingData(sources, episodes, policy, [*pulled, *inputs])
