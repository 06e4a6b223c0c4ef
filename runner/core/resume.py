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
    saved_choices = _group_choices(previous)
    _require_the_runs_groups(previous, saved_choices, overrides)
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in ("resume", "experiment") or key.startswith("paths."):
            continue
        if _unchanged(key, value, saved, saved_choices, cfg):
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


def _unchanged(key: str, value: str, saved: DictConfig, saved_choices: dict[str, str], cfg: DictConfig) -> bool:
    """An override that gives the run's own value again (a group option, or a key's value) changes nothing."""
    if key in saved_choices:
        return saved_choices[key] == value
    then = OmegaConf.select(saved, key, default=None)
    return then is not None and then == OmegaConf.select(cfg, key, default=None)


def _group_choices(previous: outputs.RunInfo) -> dict[str, str]:
    """The config-group options the run was composed with (robot=so101_follower, cameras=side_only, ...)."""
    path = previous.path / layout.HYDRA_YAML
    if not path.exists():
        return {}
    choices = OmegaConf.select(OmegaConf.load(path), "hydra.runtime.choices", default=None) or {}
    return {str(group): str(option) for group, option in choices.items() if option is not None}


def _require_the_runs_groups(previous: outputs.RunInfo, saved: dict[str, str], overrides: list[str]) -> None:
    """Today's arms must be the run's: its saved config is merged onto today's composition, and a real arm's
    config does not fit the simulated arm's schema. An arm group the run chose otherwise must be given again."""
    from hydra.core.hydra_config import HydraConfig

    now = HydraConfig.get().runtime.choices
    given = {o.lstrip("+~").partition("=")[0] for o in overrides}
    for group in ("robot", "teleop"):
        if group in saved and group not in given and now.get(group) != saved[group]:
            others = " ".join(f"{g}={saved[g]}" for g in ("robot", "teleop", "cameras", "host") if g in saved)
            raise ConfigError(
                group,
                f"was {saved[group]} in run {previous.id}, and would be {now.get(group)} here",
                f"resume with the run's own options: `resume={previous.id} {others}`",
            )


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
