"""What a stage is, kept free of heavy imports so that the CLI can list stages instantly."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from runner.app import StageContext


@dataclass(frozen=True)
class Stage:
    """A Hydra-composed stage. ``entry`` is ``"module:function"``, imported only when the stage runs."""

    name: str
    summary: str
    entry: str
    # Config sections the stage reads: they must be complete (no ??? left) before the run starts.
    uses: tuple[str, ...] = ()

    def load(self) -> Callable[[DictConfig, StageContext], Any]:
        module, _, function = self.entry.partition(":")
        return getattr(importlib.import_module(module), function)
