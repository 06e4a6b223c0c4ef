"""What a stage is, kept free of heavy imports so that the CLI can list stages instantly."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from runner.core.context import StageContext


def _load(entry: str) -> Any:
    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class Stage:
    """A Hydra-composed stage. ``entry`` is ``"module:function"``, imported only when the stage runs."""

    name: str
    summary: str
    entry: str
    # Config sections the stage reads: they must be complete (no ??? left) before the run starts.
    uses: tuple[str, ...] = ()
    # "module:function" rewriting the command line before Hydra runs it (e.g. eval.checkpoint=all -> a sweep).
    expand: str | None = None

    def load(self) -> Callable[[DictConfig, StageContext], Any]:
        return _load(self.entry)

    def load_expand(self) -> Callable[[list[str]], list[str]]:
        return _load(self.expand)
