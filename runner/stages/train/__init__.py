"""``runner train``: fine-tune a LeRobot policy on record runs or Hub datasets, with a declared checkpoint schedule.

LeRobot's own training pipeline runs in-process on the dataset (several are merged with LeRobot's dataset
tools; subsets are LeRobot episode lists; see ``data``). Checkpoints are plain LeRobot checkpoints
under ``train/checkpoints/<step>``; each also holds runner's resolved config and the dataset lineage, so it
explains itself without the outputs tree. ``resume=<run>`` continues a killed run in its own directory.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core import disk, layout, outputs
from runner.core.context import Run, StageContext
from runner.core.errors import ConfigError
from runner.hub import push as hub_push
from runner.stages.train.data import training_data
from runner.stages.train.progress import TrainProgress

log = logging.getLogger("runner.train")

# Keys a resumed training may change; everything else is the original run's.
RESUMABLE_KEYS = ("train.steps", "train.keep_checkpoints", "train.keep_steps", "train.log_freq",
                  "train.num_processes", "train.mixed_precision")  # fmt: skip
# The next checkpoint is about as large as the last one; metrics, plots and records need a little more.
CHECKPOINT_HEADROOM = 1.1


def save_schedule(train: DictConfig) -> list[int]:
    """The checkpoint steps: ``save_steps`` if given, else every ``save_freq``; the last step always."""
    steps = train.steps
    if train.save_steps:
        bad = [s for s in train.save_steps if not 0 < s <= steps]
        if bad:
            raise ConfigError("train.save_steps", f"has steps outside 1..{steps}: {bad}", "keep them <= train.steps")
        return sorted({*train.save_steps, steps})
    if train.save_freq > steps:
        raise ConfigError(
            "train.save_freq",
            f"is {train.save_freq}, more than train.steps ({steps}): no checkpoint would fall before the end",
            f"lower it (e.g. train.save_freq={max(1, steps // 4)}) or raise train.steps",
        )
    return sorted({*range(train.save_freq, steps + 1, train.save_freq), steps})


def check_processes(train: DictConfig, device: str) -> None:
    """``train.num_processes`` / ``mixed_precision`` against this machine, before anything starts."""
    count, precision = train.num_processes, train.mixed_precision.value
    if device == "mps" and count > 1:
        raise ConfigError("train.num_processes", f"is {count} on Apple's mps device, which has one GPU",
                          "use train.num_processes=1")  # fmt: skip
    if device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if count > gpus:
            raise ConfigError("train.num_processes", f"is {count}, but this machine has {gpus} GPU(s)",
                              f"use train.num_processes={gpus} or fewer (one process per GPU)")  # fmt: skip
    if precision == "fp16" and device != "cuda":
        raise ConfigError("train.mixed_precision", f"is fp16 on {device}: float16 autocast needs a CUDA GPU",
                          "use train.mixed_precision=bf16 (CPU and recent GPUs) or no")  # fmt: skip


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _retain(output_dir: Path, keep_last: int | None, keep_steps: list[int], newest: int, checkpoints) -> list[int]:
    """Delete checkpoints outside the last K and keep_steps; the newest is never deleted."""
    if keep_last is None:
        return []
    steps = sorted(checkpoints)
    keep = set(steps[-keep_last:]) | set(keep_steps) | {newest}
    deleted = []
    for step in steps:
        if step not in keep:
            shutil.rmtree(checkpoints[step])
            deleted.append(step)
    return deleted


class SavedCheckpoints:
    """What happens as each checkpoint is written: runner's config and lineage beside LeRobot's files (the
    lineage last: its presence marks the checkpoint complete), retention, run.json, and a stop at a whole
    checkpoint when the next one would not fit on the disk."""

    def __init__(self, run: Run, cfg: DictConfig, schedule_steps: list[int], progress: TrainProgress) -> None:
        self.run, self.cfg, self.schedule_steps, self.progress = run, cfg, schedule_steps, progress
        self.output_dir = run.dir / layout.TRAIN_DIR
        self.lineage: dict[str, Any] = run.record.get("lineage") or {}
        self.runner_config = OmegaConf.to_yaml(cfg, resolve=True)
        self.saved: dict[int, dict[str, Any]] = {c["step"]: c for c in run.record.get("checkpoints", [])}

    def on_checkpoint(self, step: int, checkpoint: Path, save_s: float) -> None:
        from runner.lerobot_adapter import checkpoints

        pretrained = checkpoint / checkpoints.PRETRAINED
        outputs.write_text_atomic(
            pretrained / layout.CHECKPOINT_RUNNER_CONFIG, self.run.redactor.text(self.runner_config)
        )
        val_loss = self.progress.val_losses.get(step)
        lineage = {**self.lineage, "train_run": self.run.id, "step": step, "val_loss": val_loss}
        outputs.write_json_atomic(pretrained / checkpoints.LINEAGE, lineage)
        self.saved[step] = {
            "step": step,
            "path": str(checkpoint.relative_to(self.run.dir)),
            "size_mb": round(_disk_mb(checkpoint), 2),
            "save_s": round(save_s, 3),
            "val_loss": val_loss,
        }
        train = self.cfg.train
        present = checkpoints.checkpoints(self.output_dir)
        for gone in _retain(self.output_dir, train.keep_checkpoints, list(train.keep_steps), step, present):
            log.info("retention: deleted checkpoint %d (keeping the last %s and %s)", gone, train.keep_checkpoints,
                     list(train.keep_steps) or "no pinned steps")  # fmt: skip
            self.saved[gone]["deleted"] = True
        log.info("checkpoint %d saved: %.1f MB in %.2f s -> %s", step, self.saved[step]["size_mb"], save_s,
                 checkpoint)  # fmt: skip
        self.progress.plot(sorted(checkpoints.checkpoints(self.output_dir)))
        self.run.update(checkpoints=[self.saved[s] for s in sorted(self.saved)])
        next_size = self.saved[step]["size_mb"] * disk.MB * CHECKPOINT_HEADROOM
        if any(s > step for s in self.schedule_steps) and disk.free_bytes(self.output_dir) < next_size:
            raise self.out_of_space(None, step)  # stop here, at a whole checkpoint, rather than in the next save

    def out_of_space(self, reason: str | None, step: int | None) -> disk.DiskFull:
        from runner.lerobot_adapter import checkpoints

        kept = sorted(checkpoints.checkpoints(self.output_dir))
        free = disk.free_bytes(self.output_dir) / disk.MB
        if reason is None:
            what = (f"stopped after checkpoint {step} of {self.cfg.train.steps} steps: the disk holding "
                    f"{self.output_dir} has {free:.0f} MB free, less than the next checkpoint needs "
                    f"(~{self.saved[step]['size_mb'] * CHECKPOINT_HEADROOM:.0f} MB)")  # fmt: skip
        else:
            what = f"the disk holding {self.output_dir} filled up during training ({reason})"
        saved = f"checkpoints {kept} are whole and load" if kept else "no checkpoint was saved yet"
        resume = f"continue with `runner train resume={self.run.id}`" if kept else "train again"
        return disk.DiskFull(
            f"{what}; {saved}. Free some space (or keep fewer checkpoints: train.keep_checkpoints=N), then {resume}"
        )


def train(cfg: DictConfig, ctx: StageContext) -> None:
    from runner.lerobot_adapter import checkpoints, datasets, hooked_training, training

    previous, cfg = ctx.resumed(cfg, RESUMABLE_KEYS)
    if previous is not None and checkpoints.last_step(previous.path / layout.TRAIN_DIR) is None:
        raise ConfigError("resume", f"names train run {previous.id}, which saved no checkpoint", "train anew")
    schedule_steps = save_schedule(cfg.train)
    device = training.resolve_device(cfg.train.device.value, "train.device")
    check_processes(cfg.train, device)
    if cfg.train.push_to_hub:
        hub_push.check_before_run(cfg.train.hub_repo_id, "model", "train.push_to_hub", "train.hub_repo_id")
    if previous is None:
        data = training_data(cfg, ctx, device)
        run = ctx.start_run(parents=data.run_ids)
        if data.inputs:
            run.update(inputs=data.inputs)
    else:
        run = ctx.resume_run(previous, cfg)

    output_dir = run.dir / layout.TRAIN_DIR
    start_step = checkpoints.last_step(output_dir) or 0
    progress = TrainProgress(run, cfg.train.steps, start_step)
    saved = SavedCheckpoints(run, cfg, schedule_steps, progress)

    parameters: dict[str, int] = {}

    def count_parameters(which: str, count: int) -> None:
        parameters[which] = count
        run.update(parameters=dict(parameters))

    hooks = hooked_training.Hooks(progress.metrics, saved.on_checkpoint, progress.validation, count_parameters)
    # Beside train/, not in it: LeRobot refuses to start in an output folder that already exists.
    processes = hooked_training.Processes(
        cfg.train.num_processes, cfg.train.mixed_precision.value, run.dir / layout.TRAIN_LOGS_DIR
    )
    if not processes.in_process:
        if device == "cpu" and processes.count > 1:
            log.warning("train.num_processes=%d on the CPU: %d gloo processes share this machine's cores "
                        "(a test of the multi-process path, rarely faster than one process)",
                        processes.count, processes.count)  # fmt: skip
        run.add_artifact(layout.TRAIN_LOGS_DIR)
    run.update(train={"device": device, "save_steps": schedule_steps, "num_processes": processes.count,
                      "mixed_precision": processes.mixed_precision})  # fmt: skip
    try:
        if previous is None:
            root, repo_id = data.sources[0].root, cfg.dataset.repo_id
            if len(data.sources) > 1:
                root, repo_id = datasets.merge(
                    [s.root for s in data.sources], run.dir / layout.DATASET_DIR, f"{cfg.dataset.repo_id}_merged"
                )
                run.add_artifact(layout.DATASET_DIR)
            saved.lineage = {**data.lineage(), "policy": cfg.policy.type}
            run.update(lineage=saved.lineage)
            run.add_artifact(layout.TRAIN_DIR)
            config = training.pipeline_config(
                dataset_root=root, repo_id=repo_id, episodes=data.episodes, policy=data.policy, output_dir=output_dir,
                schedule=training.Schedule(
                    steps=cfg.train.steps, save_steps=schedule_steps, batch_size=cfg.train.batch_size,
                    lr=cfg.train.lr, seed=cfg.train.seed, num_workers=cfg.train.num_workers,
                    log_freq=cfg.train.log_freq, val_split=cfg.train.val_split,
                    val_every=cfg.train.val_every or math.gcd(*schedule_steps),
                ),
                wandb=cfg.train.wandb.value, lora_rank=cfg.policy.get("lora_rank"),
                camera_names=dict(cfg.policy.get("camera_names") or {}),
            )  # fmt: skip
            training.train(config, schedule_steps, hooks, processes)
        else:
            log.info("resuming from checkpoint %d to step %d", start_step, cfg.train.steps)
            training.resume(output_dir, cfg.train.steps, schedule_steps, hooks, processes)
    except Exception as error:
        reason = None if isinstance(error, disk.DiskFull) else disk.disk_error(error)
        if reason is None:
            raise
        for step in checkpoints.drop_incomplete(output_dir):
            log.info("removed checkpoint %d: its save did not finish", step)
        raise saved.out_of_space(reason, None) from error
    finally:
        progress.close()
    kept = checkpoints.checkpoints(output_dir)
    progress.plot(sorted(kept))
    run.add_artifact(layout.TRAIN_METRICS_CSV)
    run.add_artifact(layout.TRAIN_LOSS_PNG)
    final = next((r for r in reversed(progress.rows) if r.get("loss") not in (None, "")), {})
    log.info(
        "trained to step %d; checkpoints kept: %s; final loss %s", cfg.train.steps, sorted(kept), final.get("loss")
    )
    if cfg.train.push_to_hub:
        hub_push.push_at_end(run, "model", cfg.train.hub_repo_id, cfg.train.private, "train.hub_repo_id")
