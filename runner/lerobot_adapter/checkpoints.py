"""Where LeRobot's training puts checkpoints, read without importing LeRobot (the CLI lists them quickly).

``<output_dir>/checkpoints/<6-digit step>/{pretrained_model,training_state}`` and a ``last`` link.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from runner.core import layout, outputs
from runner.core.errors import ConfigError

CHECKPOINTS = "checkpoints"
PRETRAINED = "pretrained_model"
# runner writes it into a checkpoint once LeRobot has saved all of it (weights, then training state): a
# checkpoint folder without it is a save that never finished.
LINEAGE = "runner_lineage.json"
PRETRAINED_CONFIG = "config.json"
# A camera's feature in LeRobot's datasets and policies is this prefix and its role (lerobot.utils.constants).
IMAGES = "observation.images."


def is_policy_folder(path: Path) -> bool:
    """A LeRobot pretrained policy: a checkpoint's pretrained_model, or a policy repo's files."""
    return (path / PRETRAINED_CONFIG).is_file() and (path / "model.safetensors").is_file()


def checkpoints(output_dir: Path) -> dict[int, Path]:
    """Complete checkpoints by step."""
    found = {}
    for path in (output_dir / CHECKPOINTS).glob("[0-9]*"):
        if (path / PRETRAINED / "model.safetensors").exists() and (path / PRETRAINED / LINEAGE).exists():
            found[int(path.name)] = path
    return dict(sorted(found.items()))


def incomplete(output_dir: Path) -> list[Path]:
    """Checkpoint folders whose save never finished (a kill, a full disk)."""
    complete = set(checkpoints(output_dir).values())
    return sorted(p for p in (output_dir / CHECKPOINTS).glob("[0-9]*") if p.is_dir() and p not in complete)


def last_step(output_dir: Path) -> int | None:
    link = output_dir / CHECKPOINTS / "last"
    return int(link.resolve().name) if link.exists() else None


def drop_incomplete(output_dir: Path) -> list[int]:
    """Delete the checkpoint folders whose save never finished and point ``last`` at the newest complete one
    (or remove it when there is none); returns the steps deleted."""
    dropped = []
    for folder in incomplete(output_dir):
        shutil.rmtree(folder)
        dropped.append(int(folder.name))
    link = output_dir / CHECKPOINTS / "last"
    complete = checkpoints(output_dir)
    if link.is_symlink() and (not link.exists() or int(link.resolve().name) not in complete):
        link.unlink()
        if complete:
            link.symlink_to(complete[max(complete)].name)
    return dropped


def training_dataset(folder: Path) -> Path | None:
    """The dataset a policy folder was trained on (the first, if several were merged), when it is on this machine."""
    lineage = folder / LINEAGE
    if not lineage.exists():
        return None
    roots = json.loads(lineage.read_text()).get("dataset_roots") or []
    if roots and (Path(roots[0]) / layout.DATASET_INFO).exists():
        return Path(roots[0])
    return None


def validation_loss(folder: Path) -> float | None:
    """A checkpoint's loss on the episodes its training held out (train.val_split), when it measured one."""
    lineage = folder / LINEAGE
    return json.loads(lineage.read_text()).get("val_loss") if lineage.exists() else None


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


def checkpoint_step(wanted: str, available: dict[int, Path], train_run: str, key: str = "eval.checkpoint") -> int:
    """The step ``key`` names (a step or last) among a train run's complete checkpoints."""
    if wanted == "last":
        return max(available)
    if wanted.isdigit() and int(wanted) in available:
        return int(wanted)
    raise ConfigError(
        key,
        f"is {wanted}, which is not a checkpoint of train run {train_run} (available: "
        f"{', '.join(map(str, sorted(available)))})",
        "pick one of those steps, last, or all",
    )
