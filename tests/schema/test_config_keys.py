"""Every config key is one thing in one place: declared once in runner/schema/ with its default, read by
something, and never restated with the same value in a conf/ file (two copies of a default drift apart)."""

from __future__ import annotations

import dataclasses
import re
import typing
from enum import Enum
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from runner import schema

# Groups handed to LeRobot whole (runner.lerobot_adapter.training.policy_config): their keys are LeRobot's.
LEROBOT_POLICIES = {
    schema.learning.ACTPolicyConfig: ("lerobot.policies.act.configuration_act", "ACTConfig"),
    schema.learning.DiffusionPolicyConfig: ("lerobot.policies.diffusion.configuration_diffusion", "DiffusionConfig"),
    schema.learning.SmolVLAPolicyConfig: ("lerobot.policies.smolvla.configuration_smolvla", "SmolVLAConfig"),
}


def _nested(hint: object) -> list[type]:
    """The schema classes a field's type holds (itself, or inside dict[...] / list[...] / Optional)."""
    if dataclasses.is_dataclass(hint):
        return [hint]
    return [c for arg in typing.get_args(hint) for c in _nested(arg)]


def _schema_classes() -> list[type]:
    found: list[type] = []
    todo = [schema.RunnerConfig, *(c for options in schema.OPTION_SCHEMAS.values() for c in options.values())]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        todo += [c for hint in typing.get_type_hints(cls).values() for c in _nested(hint)]
    return found


def _readers() -> str:
    """Where a key can be read: runner's code (not its schema) and the conf tree's interpolations."""
    code = [p.read_text() for p in (REPO / "runner").rglob("*.py") if "schema" not in p.relative_to(REPO).parts]
    interpolations = re.findall(r"\$\{[^}]*\}", "\n".join(p.read_text() for p in (REPO / "conf").rglob("*.yaml")))
    return "\n".join([*code, *interpolations])


def unread_keys(classes: list[type], readers: str) -> list[str]:
    """``Class.key`` for each declared key that nothing reads: not as ``.key`` or ``"key"`` in runner's code, not
    in a conf interpolation, and, for a policy, not a field of the LeRobot config it is handed to."""
    import importlib

    unread = []
    for cls in classes:
        lerobot_fields: set[str] = set()
        if cls in LEROBOT_POLICIES:
            module, name = LEROBOT_POLICIES[cls]
            lerobot_fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))}
        for field in dataclasses.fields(cls):
            read = re.search(rf"\.{field.name}\b|[\"']{field.name}[\"']", readers)
            if not read and field.name not in lerobot_fields:
                unread.append(f"{cls.__name__}.{field.name}")
    return unread


def test_every_declared_config_key_is_read():
    assert unread_keys(_schema_classes(), _readers()) == [], (
        "a key nothing reads makes a user believe something happened: read it, or remove it from runner/schema/"
    )


def test_the_unread_key_check_finds_a_dead_key():
    dead = dataclasses.make_dataclass("DatasetConfig", [("push_to_the_moon", bool, dataclasses.field(default=False))])
    assert unread_keys([dead], _readers()) == ["DatasetConfig.push_to_the_moon"]


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default.value if isinstance(field.default, Enum) else field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def restated_defaults(data: dict, cls: type, path: str) -> list[str]:
    """The keys of a conf file that set a schema key to the default the schema already gives it."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    found = []
    for key, value in data.items():
        if key not in fields:
            continue
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            found += restated_defaults(value, hints[key], f"{path}.{key}")
        elif value == _default(fields[key]) and type(value) is type(_default(fields[key])):
            found.append(f"{path}.{key}")
    return found


def _option_schema(group: str, data: dict) -> type | None:
    for entry in data.get("defaults", []):
        if isinstance(entry, str) and entry.startswith("/schema/"):
            _, _, option_group, name = entry.split("@")[0].split("/")
            return schema.OPTION_SCHEMAS[option_group][name]
    hint = typing.get_type_hints(schema.RunnerConfig).get(group)
    return hint if dataclasses.is_dataclass(hint) else None


OPTION_FILES = sorted(
    p for p in (REPO / "conf").glob("*/*.yaml") if p.parent.name not in ("hydra", "experiment", "cameras")
)


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: str(p.relative_to(REPO / "conf")))
def test_no_conf_file_restates_a_schema_default(path: Path):
    data = yaml.safe_load(path.read_text()) or {}
    cls = _option_schema(path.parent.name, data)
    assert cls is not None, f"{path.parent.name} has no schema class in runner/schema/"
    restated = restated_defaults(data, cls, path.parent.name)
    assert not restated, f"{path.name} restates schema defaults {restated}: drop them (runner/schema/ has them)"


def test_the_restated_default_check_finds_one():
    assert restated_defaults({"fps": 30, "seed": 7}, schema.recording.EpisodeConfig, "episode") == ["episode.fps"]
