"""The checks every job passes before its stage runs, and the secrets scrubbed from its config."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core.conf import CONF_DIR
from runner.core.errors import ConfigError
from runner.core.redact import Redactor


def check_complete(cfg: DictConfig, sections: Iterable[str]) -> None:
    """Fail on a ``???`` left or an interpolation that does not resolve in the sections a stage reads, and
    on a value outside its schema bounds anywhere."""
    from runner.schema import check_bounds

    check_bounds(cfg)
    for section in sections:
        node = cfg.get(section)
        if not isinstance(node, DictConfig):
            continue
        missing = sorted(OmegaConf.missing_keys(node))  # full keys, e.g. task.instruction
        if missing:
            key = missing[0]
            raise ConfigError(
                key,
                f"has no value and this stage needs it (missing: {', '.join(missing)})",
                f"set it in the experiment YAML or on the command line, e.g. {key}=...",
            )
        OmegaConf.to_container(node, resolve=True)


def check_host_choice(overrides: Iterable[str]) -> None:
    """``host`` is an optional group (no local.yaml is fine), so Hydra skips a profile that does not exist
    instead of failing: a misspelt ``host=NAME`` would silently run with no ports or cameras."""
    for override in overrides:
        if not override.startswith("host="):
            continue
        name = override.split("=", 1)[1]
        if name not in ("", "null") and not (CONF_DIR / "host" / f"{name}.yaml").exists():
            known = sorted(p.stem for p in (CONF_DIR / "host").glob("*.yaml"))
            raise ConfigError(
                f"host={name}",
                f"names no host profile (conf/host/{name}.yaml does not exist)",
                f"pick one of {', '.join(known)}, or create it from conf/host/example.yaml",
            )


def check_added_keys(cfg: DictConfig, overrides: Iterable[str], groups: Iterable[str]) -> None:
    """Reject ``+key=value`` into a schema-typed node: Hydra allows it, but the schema is the single truth.

    Open maps (``cameras``, ``host.ports``, ...) still accept new keys.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(groups)
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if not (override.is_add() or override.is_force_add()) or key in groups:
            continue
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
        if schema is not None and dataclasses.is_dataclass(schema):
            names = [f.name for f in dataclasses.fields(schema)]
            if leaf in names:  # a key the schema has (a map such as policy.camera_names, filled with `+`)
                continue
            fields = ", ".join(n for n in names if n != leaf)
            raise ConfigError(
                key,
                f"is not a key of {schema.__name__} (`+` cannot add keys to a schema)",
                f"use one of its keys ({fields}), or change runner/schema/ if a new key is really needed",
            )


def scrub_secrets(node: Any, redactor: Redactor, path: str = "") -> list[str]:
    """Replace, in place, every config value that holds a live secret; return the keys it touched.

    Stages write config values into datasets and checkpoints, so a token pasted into a value (or an
    ``${oc.env:HF_TOKEN}``) must be gone before any stage sees the config.
    """
    from omegaconf import ListConfig

    touched = []
    keys = range(len(node)) if isinstance(node, ListConfig) else list(node.keys())
    for key in keys:
        full = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            touched += scrub_secrets(value, redactor, full)
        elif isinstance(value, str) and redactor.text(value) != value:
            node[key] = redactor.text(value)  # an existing key: no struct flag to lift
            touched.append(full)
    return touched
