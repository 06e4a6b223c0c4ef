"""The conf/ tree and the resolvers it uses (``${runner_outputs:}``, ``${runner_sweep_dir:...}``)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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


def compose_config(overrides: list[str]) -> DictConfig:
    """The config ``runner <stage> OVERRIDES`` runs with (no sweep overrides), for code that is not runner's
    command line: LeRobot's tools running runner's plugins (runner.lerobot_adapter.sim_env)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from runner.schema import register_schemas

    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


# On import, not only from the CLI: a submitit job process unpickles the task (importing this module) and
# composes its config before any runner code runs.
register_resolvers()
