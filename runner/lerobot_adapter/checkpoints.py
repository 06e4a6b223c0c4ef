"""Where LeRobot's training puts checkpoints, read without importing LeRobot (the CLI lists them quickly).

``<output_dir>/checkpoints/<6-digit step>/{pretrained_model,training_state}`` and a ``last`` link.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = "checkpoints"
PRETRAINED = "pretrained_model"


def checkpoints(output_dir: Path) -> dict[int, Path]:
    """Complete checkpoints by step (a folder without its training state is a save that never finished)."""
    found = {}
    for path in (output_dir / CHECKPOINTS).glob("[0-9]*"):
        if (path / PRETRAINED / "model.safetensors").exists() and (path / "training_state").is_dir():
            found[int(path.name)] = path
    return dict(sorted(found.items()))


def last_step(output_dir: Path) -> int | None:
    link = output_dir / CHECKPOINTS / "last"
    return int(link.resolve().name) if link.exists() else None
