"""runner's train config as LeRobot's ``TrainPipelineConfig``, trained in this process or under
``accelerate launch`` (``accelerated``), with runner's hooks (``hooked_training``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import draccus
from lerobot.configs.default import DatasetConfig, PeftConfig
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.train import TrainPipelineConfig
from lerobot.optim.optimizers import AdamWConfig  # noqa: F401  (registers the optimizer choice)

from runner.core.errors import ConfigError
from runner.lerobot_adapter.checkpoints import CHECKPOINTS, IMAGES, PRETRAINED
from runner.lerobot_adapter.datasets import VIDEO_BACKEND
from runner.lerobot_adapter.hooked_training import TRAIN_CONFIG, Hooks, Processes, run_hooked

# Fields runner's policy schemas hold that are not LeRobot config fields.
RUNNER_ONLY_POLICY_KEYS = ("vlm_path", "lora_rank", "camera_names")


def resolve_device(requested: str, key: str) -> str:
    """``auto`` is cuda, then mps, then cpu; an explicit device must exist, or the config ``key`` naming it is
    refused."""
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if requested == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available.get(requested, False):
        raise ConfigError(key, f"is {requested}, which is not available on this machine", f"use {key}=auto or cpu")
    return requested


def policy_config(policy: dict[str, Any], device: str) -> PreTrainedConfig:
    """A LeRobot policy config from runner's policy group; nothing is pushed, nothing is downloaded."""
    fields = {k: v for k, v in policy.items() if k not in RUNNER_ONLY_POLICY_KEYS and v is not None}
    if policy["type"] == "smolvla":
        fields["vlm_model_name"] = str(Path(policy["vlm_path"]).resolve())
    if policy["type"] in ("act", "diffusion"):
        fields["pretrained_backbone_weights"] = policy.get("pretrained_backbone_weights")
    fields.pop("pretrained_path", None)
    config = draccus.decode(PreTrainedConfig, {**fields, "device": device, "push_to_hub": False})
    if policy.get("pretrained_path"):
        config.pretrained_path = Path(policy["pretrained_path"])
        # The model's own inputs, as `--policy.path` gives LeRobot: otherwise LeRobot takes them from the
        # dataset, and a rename map (policy.camera_names) would rename to keys the new model lacks.
        base = PreTrainedConfig.from_pretrained(config.pretrained_path)
        config.input_features, config.output_features = base.input_features, base.output_features
    return config


@dataclass
class Schedule:
    steps: int
    save_steps: list[int]  # sorted; the last step is always saved
    batch_size: int
    lr: float | None
    seed: int
    num_workers: int
    log_freq: int
    val_split: float = 0.0  # LeRobot's dataset.eval_split
    val_every: int = 0  # LeRobot's eval_steps (0: no validation loss)


def pipeline_config(
    *, dataset_root: Path, repo_id: str, episodes: list[int] | None, policy: PreTrainedConfig,
    output_dir: Path, schedule: Schedule, wandb: str, lora_rank: int | None = None,
    camera_names: dict[str, str] | None = None,
) -> TrainPipelineConfig:  # fmt: skip
    config = TrainPipelineConfig(
        dataset=DatasetConfig(repo_id=repo_id, root=str(dataset_root), episodes=episodes, video_backend=VIDEO_BACKEND),
        policy=policy,
        output_dir=output_dir,
        seed=schedule.seed,
        num_workers=schedule.num_workers,
        batch_size=schedule.batch_size,
        steps=schedule.steps,
        log_freq=schedule.log_freq,
        save_freq=schedule.steps,  # replaced by the explicit schedule below
    )
    if camera_names:  # LeRobot saves it in the checkpoint's preprocessor: eval renames the same way
        config.rename_map = {f"{IMAGES}{role}": f"{IMAGES}{name}" for role, name in camera_names.items()}
    if lora_rank is not None:  # LeRobot's PEFT: the base weights frozen, LoRA adapters of this rank trained
        config.peft = PeftConfig(method_type="LORA", r=lora_rank)
    if schedule.val_split > 0:
        config.dataset.eval_split = schedule.val_split
        config.eval_steps = schedule.val_every
    if wandb != "off":
        config.wandb.enable = True
        config.wandb.mode = wandb
        config.wandb.project = "runner"
    if schedule.lr is not None:
        policy_lr_field = "optimizer_lr"
        if hasattr(policy, policy_lr_field):
            setattr(policy, policy_lr_field, schedule.lr)
    return config


def train(config: TrainPipelineConfig, save_steps: list[int], hooks: Hooks, processes: Processes) -> None:
    """Train from scratch (or from ``policy.pretrained_path``); checkpoints go to ``output_dir/checkpoints``."""
    _run(config, None, save_steps, hooks, processes)


def resume(output_dir: Path, steps: int, save_steps: list[int], hooks: Hooks, processes: Processes) -> None:
    """Continue from ``output_dir/checkpoints/last`` to ``steps``: same step counter, optimizer and data order."""
    saved = output_dir / CHECKPOINTS / "last" / PRETRAINED / TRAIN_CONFIG
    config = TrainPipelineConfig.from_pretrained(saved)
    config.resume = True
    config.steps = steps
    _run(config, saved, save_steps, hooks, processes)


def _run(
    config: TrainPipelineConfig, resume_from: Path | None, save_steps: list[int], hooks: Hooks, processes: Processes
) -> None:
    if processes.in_process:
        run_hooked(config, resume_from, save_steps, hooks)
        return
    from runner.lerobot_adapter import accelerated

    accelerated.launch(config, resume_from, save_steps, hooks, processes)
