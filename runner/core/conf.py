"""The conf/ tree and the resolvers it uses (``${runner_outputs:}``, ``${runner_sweep_dir:...}``)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from runner.core import outputs
from runner.core.sweeps import SWEEP_DIR_ENV, SWEEP_ID_ENV

CONF_DIR = outputs.repo_root() / "conf"


def _sweep_dir(outputs_root: str, experiment: str | None) -> str:
    if SWEEP_DIR_ENV in os.environ:
        return os.environ[SWEEP_DIR_ENV]
    sweep_id = os.environ.get(SWEEP_ID_ENV) or outputs.new_id("sweep")
    return str(Path(outputs_root) / (experiment or outputs.DEFAULT_EXPERIMENT) / sweep_id)


def register_resolvers() -> None:
    """Resolvers the conf tree uses; idempotent."""
    if not OmegaConf.has_resolver("runner_outputs"):
        OmegaConf.register_new_resolver("runner_outputs", lambda: str(outputs.default_outputs_root()))
    if not OmegaConf.has_resolver("runner_sweep_dir"):
        OmegaConf.register_new_resolver("runner_sweep_dir", _sweep_dir)


# On import, not only from the CLI: a submitit job process unpickles the task (importing this module) and
# composes its config before any runner code runs.
register_resolvers()
