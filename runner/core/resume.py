"""Resuming a run: the config it continues with is its saved one, changed only where allowed."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from runner.core import layout, outputs
from runner.core.errors import ConfigError


def resumed_config(previous: outputs.RunInfo, cfg: DictConfig, overrides: list[str], resumable: tuple[str, ...]):
    """The config a resumed run continues with: its own saved one, plus only the overrides it may change.

    Anything else given on the command line is an error, not silently ignored: the data or checkpoints on
    disk were made with the saved values.
    """
    saved = OmegaConf.load(previous.path / layout.CONFIG_YAML)
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key in ("resume", "experiment") or key.startswith("paths."):
            continue
        if not any(key == k or key.startswith(k + ".") for k in resumable):
            raise ConfigError(
                key,
                f"cannot change when resuming run {previous.id}: it was made with the saved value",
                f"drop it, or start a new run; keys a resumption may change: {', '.join(resumable)}",
            )
        OmegaConf.update(saved, key, OmegaConf.select(cfg, key), force_add=True)
    merged = OmegaConf.merge(cfg, saved)  # onto today's composition: the schema's types and any new keys
    _drop_unsaved_entries(merged, saved)
    merged.resume = cfg.resume
    return merged


def _drop_unsaved_entries(merged: DictConfig, saved: DictConfig) -> None:
    """Remove what an open map (cameras, host ports) gained from today's defaults in the merge: a run resumed
    with one camera must not come back with the default's two. Schema nodes keep their new keys."""
    with open_dict(merged):
        for key in list(merged.keys()):
            if key not in saved:
                if OmegaConf.get_type(merged) is dict:
                    del merged[key]
            elif isinstance(merged[key], DictConfig) and isinstance(saved[key], DictConfig):
                _drop_unsaved_entries(merged[key], saved[key])
