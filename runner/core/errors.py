"""Errors a user can act on, each explained in one paragraph that names the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config value a stage cannot use; raised before its run starts, so nothing is written."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"`{key}` {problem}")
        self.key, self.problem, self.fix = key, problem, fix

    def __reduce__(self) -> tuple[Any, ...]:
        # A submitit job returns its error to the submitting process pickled.
        return type(self), (self.key, self.problem, self.fix)


class StageFailed(RuntimeError):
    """A stage raised after its run started; the run is marked failed and run.log has the traceback.

    Keeps the cause as text: it travels pickled from a submitit job, and any exception may not.
    """

    def __init__(self, stage: str, run_dir: Path, error: BaseException | str) -> None:
        cause = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"{stage} failed: {cause}")
        self.stage, self.run_dir, self.cause = stage, Path(run_dir), cause

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.stage, str(self.run_dir), self.cause)

    def explain(self) -> str:
        return (
            f"runner {self.stage}: failed with {self.cause}. "
            f"The run is marked failed; the traceback is in {self.run_dir / 'run.log'}."
        )


def is_config_error(error: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(error, (ConfigError, HydraException, OmegaConfBaseException)) or _yaml_error(error) is not None


def _yaml_error(error: BaseException) -> Any:
    """The YAML syntax error a config file raised while Hydra loaded it, if ``error`` is (or wraps) one."""
    import yaml

    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, yaml.MarkedYAMLError):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _shown_path(name: str) -> str:
    from runner.core.outputs import repo_root

    path = Path(name)
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return name


def _repo_file(source: str) -> str:
    """Where runner keeps a config name: experiment/NAME is experiments/NAME.yaml, GROUP/NAME is under conf/."""
    group, _, name = source.rpartition("/")
    return f"experiments/{name}.yaml" if group == "experiment" else f"conf/{source}.yaml"


def _config_file(source: str) -> str:
    """The file Hydra means by a config name, as the user knows it: its path in the repo (or, found on another
    ``hydra.searchpath``, the option by its name)."""
    from runner.core.outputs import repo_root

    path = _repo_file(source)
    if (repo_root() / path).exists():
        return path
    group, _, name = source.rpartition("/")
    return f"experiment '{name}'" if group == "experiment" else f"the {group} option '{name}'"


def _config_path(source: str) -> Path | None:
    """The file Hydra composed for a config name: in the repo, or in a ``hydra.searchpath`` folder of the
    command line."""
    from runner.core.outputs import repo_root

    candidates = [repo_root() / _repo_file(source)]
    for arg in sys.argv:
        if arg.startswith("hydra.searchpath="):
            folders = re.findall(r"file://([^,\]]+)", arg)
            candidates += [Path(folder) / f"{source}.yaml" for folder in folders]
    return next((path for path in candidates if path.is_file()), None)


def _line_of(full_key: str, path: Path | None) -> int | None:
    """The line of ``full_key`` in a config file; a group option's file holds the key below its package."""
    import yaml

    if path is None:
        return None
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError:
        return None
    parts = full_key.split(".")
    for start in range(len(parts)):
        node, line = root, None
        for part in parts[start:]:
            if not isinstance(node, yaml.MappingNode):
                break
            found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not found:
                break
            key, node = found[0]
            line = key.start_mark.line + 1
        else:
            return line
    return None


def _yaml_paragraph(error: Any) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"{_shown_path(mark.name)}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
    problem = " ".join(filter(None, [error.context, error.problem]))
    return (
        f"Config error: {where} is not valid YAML: {problem}. Fix: correct the file there (the keys of one "
        "mapping share one indentation, a value follows `key:` after a space, lists are `- item` or [a, b]); "
        "nothing was run or written."
    )


def _fields_of(object_type: Any) -> list[str]:
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [f.name for f in dataclasses.fields(object_type)]
    return []


def _choices(values: list[str]) -> str:
    return ", ".join(values) if values else "(none)"


def _omegaconf_paragraph(error: Any, command: str) -> str:
    from omegaconf.errors import ConfigKeyError, ValidationError

    key = getattr(error, "full_key", None) or "?"
    object_type = getattr(error, "object_type", None)
    message = (str(getattr(error, "msg", None) or error).splitlines() or [type(error).__name__])[0]
    if isinstance(error, ConfigKeyError) or "not in struct" in message or "not in '" in message:
        valid = _fields_of(object_type)
        leaf = key.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(leaf, valid, n=1)
        parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
        did_you_mean = f" Did you mean `{parent}{close[0]}`?" if close else ""
        where = f" in {object_type.__name__}" if isinstance(object_type, type) else ""
        return (
            f"Config error: `{key}` is not a key{where}.{did_you_mean} "
            f"Valid keys here: {_choices(valid)}. Fix the spelling, or see every key with `{command} --cfg job`."
        )
    if isinstance(error, ValidationError):
        return (
            f"Config error: `{key}` has the wrong type or value: {message}. "
            f"Fix the value; see the default with `{command} --cfg job`."
        )
    return f"Config error at `{key}`: {message}. See the composed config with `{command} --cfg job`."


def format_config_error(error: BaseException, command: str) -> str:
    """One readable paragraph for any config error that Hydra, OmegaConf or a stage raises."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, ConfigError):
        return f"Config error: {error}. Fix: {error.fix}."
    if _yaml_error(error) is not None:
        return _yaml_paragraph(_yaml_error(error))
    if isinstance(error, MissingConfigException):
        missing = error.missing_cfg_file or ""
        group, _, option = missing.rpartition("/")
        options = list(error.options or [])
        if group:
            close = difflib.get_close_matches(option, options, n=1)
            did_you_mean = f" Did you mean `{group}={close[0]}`?" if close else ""
            noun = "experiment in experiments/" if group == "experiment" else f"option of group '{group}'"
            return (
                f"Config error: `{group}={option}` is not an {noun}.{did_you_mean} Valid choices: {_choices(options)}."
            )
        return f"Config error: {str(error).strip()}"
    if isinstance(error, OverrideParseException):
        text = " ".join(str(error).split())
        return (
            f"Config error: malformed override: {text}. Overrides look like key=value, group=option, "
            f"+new_key=value or key=a,b (with -m); quote values with spaces."
        )
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else None
    if isinstance(error, OmegaConfBaseException):
        cause = error
    if cause is not None:
        return _omegaconf_paragraph(cause, command)
    message = " ".join(str(error).split())
    key_error = re.search(r"Key '[^']+' not in '([^']+)' full_key: (\S+)", message)
    if key_error:
        schema, key = key_error.groups()
        where = re.search(r"In '([^']+)'", message)
        source = f" (set in {where.group(1)}.yaml)" if where else ""
        return (
            f"Config error: `{key}`{source} is not a key of {schema}. A preset's keys belong to the option it "
            f"chose; after switching a group (e.g. policy=...) on the command line, drop or change the keys that "
            f"only the old option has, or use a preset made for the new one."
        )
    invalid = re.search(r"In '([^']+)': ValidationError raised while composing config:\s*(.*?)\s*full_key: (\S+)",
                        message)  # fmt: skip
    if invalid:
        source, problem, key = invalid.groups()
        line = _line_of(key, _config_path(source))
        where = _config_file(source) + (f", line {line}," if line else "")
        return (
            f"Config error: `{key}` in {where} has the wrong type or value: {problem}. Fix the value "
            f"in that file; see every key's type and default with `{command} --cfg job` (without that preset)."
        )
    match = re.search(r"Could not override '([^']+)'", message)
    if match:
        return f"Config error: `{match.group(1)}` cannot be overridden: {message}"
    return f"Config error: {message}"
