"""What a ``runner dataset`` operation will make, decided and checked from the sources' metadata alone (their
meta/info.json and runner's per-episode table), before any run directory exists.

A plan lists, for each dataset to make, which source episodes it holds in which order and any new task
strings; building it (runner.curation.build) only carries that out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.core import layout, outputs
from runner.core.errors import ConfigError

# What two datasets must share to be merged (LeRobot's merge needs equal features; runner's camera and
# scene checks need one robot, fps and look).
MERGE_KEYS = ("robot_type", "fps")


@dataclass(frozen=True)
class Source:
    run: outputs.RunInfo
    info: dict[str, Any]
    rows: list[dict[str, str]]  # runner's table, one row per dataset episode in order; [] if it has none
    sim_world: dict[str, Any] | None

    @property
    def root(self) -> Path:
        return self.run.path / layout.DATASET_DIR

    @property
    def total(self) -> int:
        return int(self.info["total_episodes"])

    def column(self, key: str, name: str) -> list[str]:
        """Each episode's value of a runner_episodes.csv column; a missing table or column names ``key``."""
        if not self.rows:
            raise ConfigError(key, f"needs runner's episode table, and {self.run.id} has none", "select by --episodes")
        if name not in self.rows[0]:
            raise ConfigError(
                key, f"names '{name}', not a column of runner_episodes.csv", f"columns: {list(self.rows[0])}"
            )
        return [row[name] for row in self.rows]


@dataclass
class Derived:
    """One dataset to make: source episodes (source index, episode) in their new order, new task strings."""

    part: str | None  # split: "train" or "held_out"
    sources: list[Source]
    episodes: list[tuple[int, int]]
    tasks: dict[int, str] = field(default_factory=dict)  # new episode index -> task string
    operation: dict[str, Any] = field(default_factory=dict)


def read_source(outputs_root: Path, ref: str) -> Source:
    try:
        run = outputs.resolve_run(outputs_root, ref, stage=layout.DATASET_STAGES)
    except outputs.RunReferenceError as error:
        raise ConfigError(
            "RUN", str(error).rstrip("."), "give a record or dataset run id (see `runner runs`)"
        ) from None
    dataset = run.path / layout.DATASET_DIR
    info_path = dataset / layout.DATASET_INFO
    if not info_path.exists():
        raise ConfigError(
            "RUN", f"names {run.stage} run {run.id}, which has no dataset", "give a run that recorded one"
        )
    rows: list[dict[str, str]] = []
    table = dataset / layout.DATASET_EPISODES_CSV
    if table.exists():
        with open(table, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("kept", "True") == "True"]
        rows.sort(key=lambda r: int(r["dataset_episode"]))
    world = dataset / layout.DATASET_SIM_WORLD
    sim_world = json.loads(world.read_text()) if world.exists() else None
    return Source(run, json.loads(info_path.read_text()), rows, sim_world)


def parse_indices(text: str, key: str, total: int) -> list[int]:
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(key, f"is '{text}', not a comma list of episode indices", "e.g. 0,3,7") from None
    bad = sorted({i for i in indices if not 0 <= i < total})
    if bad:
        raise ConfigError(key, f"has indices outside 0..{total - 1}: {bad}", f"the dataset has {total} episodes")
    return indices


def _scenario_matches(source: Source, names: list[str], key: str) -> set[int]:
    scenarios = source.column(key, "scenario")
    unknown = sorted(set(names) - set(scenarios))
    if unknown:
        raise ConfigError(key, f"names unknown scenarios {unknown}", f"recorded ones: {sorted(set(scenarios))}")
    return {i for i, s in enumerate(scenarios) if s in names}


def _where_matches(source: Source, conditions: list[str]) -> set[int]:
    chosen = set(range(source.total))
    for condition in conditions:
        name, equals, value = condition.partition("=")
        if not equals or not name:
            raise ConfigError("--where", f"is '{condition}', not COLUMN=VALUE", "e.g. --where success=false")
        values = source.column("--where", name)
        chosen &= {i for i, v in enumerate(values) if v.lower() == value.lower()}
    return chosen


def scene_unlike(source: Source, reference: int) -> set[int]:
    """The episodes whose start view differs from episode ``reference``'s beyond the run's scene.* thresholds."""
    from runner.scene.drift import episodes_unlike

    if not 0 <= reference < source.total:
        raise ConfigError("--scene-unlike", f"is episode {reference}, and the run has episodes 0-{source.total - 1}",
                          "name one of its episodes")  # fmt: skip
    if not any(f.get("dtype") in ("video", "image") for f in source.info["features"].values()):
        raise ConfigError("--scene-unlike", f"needs cameras, and {source.run.id} recorded none", "select otherwise")
    return episodes_unlike(source.root, source.total, reference, source.run.path / layout.CONFIG_YAML)


def plan_drop(source: Source, episodes: str | None, scenarios: list[str], where: list[str],
              scene_unlike: set[int] | None = None) -> Derived:  # fmt: skip
    """Drop the episodes matching every selector given (--episodes, --scenario, --where, --scene-unlike)."""
    if episodes is None and not scenarios and not where and scene_unlike is None:
        raise ConfigError("--episodes", "is not given, nor --scenario, --where or --scene-unlike",
                          "say which episodes to drop")  # fmt: skip
    dropped = set(range(source.total))
    if scene_unlike is not None:
        dropped &= scene_unlike
    if episodes is not None:
        dropped &= set(parse_indices(episodes, "--episodes", source.total))
    if scenarios:
        dropped &= _scenario_matches(source, scenarios, "--scenario")
    if where:
        dropped &= _where_matches(source, where)
    if not dropped:
        raise ConfigError("--episodes" if episodes is not None else "--where" if where else "--scenario",
                          "selects no episode to drop", "check the selection against runner_episodes.csv")  # fmt: skip
    kept = [i for i in range(source.total) if i not in dropped]
    if not kept:
        raise ConfigError("--episodes" if episodes is not None else "--where" if where else "--scenario",
                          f"drops every episode ({source.total} of {source.total}): the result would be empty",
                          "keep at least one episode")  # fmt: skip
    operation = {"operation": "drop", "dropped": sorted(dropped), "episodes": episodes, "scenarios": scenarios,
                 "where": where, "scene_unlike": scene_unlike is not None}  # fmt: skip
    return Derived(None, [source], [(0, i) for i in kept], operation=operation)


def plan_retask(source: Source, task: str | None, scenario_tasks: list[str], episode_tasks: list[str]) -> Derived:
    """New task strings: one for every episode, per scenario, or per episode (the most specific wins)."""
    if task is None and not scenario_tasks and not episode_tasks:
        raise ConfigError("--task", "is not given, nor --scenario or --episode", "give the new instruction text")
    tasks: dict[int, str] = {}
    if task is not None:
        tasks |= dict.fromkeys(range(source.total), _text(task, "--task"))
    for given in scenario_tasks:
        name, text = _pair(given, "--scenario", "NAME=TEXT")
        tasks |= dict.fromkeys(sorted(_scenario_matches(source, [name], "--scenario")), _text(text, "--scenario"))
    for given in episode_tasks:
        index, text = _pair(given, "--episode", "INDEX=TEXT")
        [episode] = parse_indices(index, "--episode", source.total)
        tasks[episode] = _text(text, "--episode")
    operation = {"operation": "retask", "task": task, "scenario_tasks": scenario_tasks, "episode_tasks": episode_tasks}
    return Derived(None, [source], [(0, i) for i in range(source.total)], tasks, operation)


def _pair(given: str, key: str, form: str) -> tuple[str, str]:
    name, equals, text = given.partition("=")
    if not equals or not name.strip():
        raise ConfigError(key, f"is '{given}', not {form}", f"e.g. {key} {form}")
    return name.strip(), text


def _text(text: str, key: str) -> str:
    if not text.strip():
        raise ConfigError(key, "gives an empty instruction", "write what the robot should do")
    return text.strip()


def plan_split(source: Source, held_out: float | None, held_out_episodes: str | None, seed: int) -> list[Derived]:
    """Two datasets: the held-out episodes (a seeded random share, or the ones named) and the rest."""
    if (held_out is None) == (held_out_episodes is None):
        raise ConfigError("--held-out", "and --held-out-episodes: give exactly one", "e.g. --held-out 0.2")
    if held_out_episodes is not None:
        chosen = sorted(set(parse_indices(held_out_episodes, "--held-out-episodes", source.total)))
        key = "--held-out-episodes"
    else:
        if not 0 < held_out < 1:
            raise ConfigError("--held-out", f"is {held_out}, not a share between 0 and 1", "e.g. 0.2")
        count = round(held_out * source.total)
        chosen = sorted(int(i) for i in np.random.default_rng(seed).permutation(source.total)[:count])
        key = "--held-out"
    rest = [i for i in range(source.total) if i not in set(chosen)]
    if not chosen or not rest:
        raise ConfigError(key, f"leaves {len(rest)} training and {len(chosen)} held-out episodes of {source.total}",
                          "both parts need at least one episode")  # fmt: skip
    operation = {"operation": "split", "held_out": held_out, "held_out_episodes": chosen, "seed": seed}
    return [
        Derived("train", [source], [(0, i) for i in rest], operation=operation),
        Derived("held_out", [source], [(0, i) for i in chosen], operation=operation),
    ]


def plan_merge(sources: list[Source]) -> Derived:
    """The episodes of every source in the order given; they must share robot, fps, cameras and look."""
    if len(sources) < 2:
        raise ConfigError("RUN", "names one run; merge needs two or more", "list the record runs to merge")
    ids = [s.run.id for s in sources]
    if len(set(ids)) != len(ids):
        raise ConfigError("RUN", f"names a run twice ({ids})", "list each record run once")
    first = sources[0]
    for other in sources[1:]:
        for key in MERGE_KEYS:
            if other.info.get(key) != first.info.get(key):
                raise ConfigError("RUN", f"mixes datasets of different {key}: {first.run.id} has "
                                  f"{first.info.get(key)}, {other.run.id} has {other.info.get(key)}",
                                  "merge recordings of one robot, fps and camera set")  # fmt: skip
        ours, theirs = _shapes(first), _shapes(other)
        if ours != theirs:
            raise ConfigError("RUN", f"mixes datasets with different features or cameras: {first.run.id} has "
                              f"{ours}, {other.run.id} has {theirs}",
                              "merge recordings of one robot, fps and camera set")  # fmt: skip
        if (first.sim_world or {}).get("render") != (other.sim_world or {}).get("render"):
            raise ConfigError("RUN", f"mixes simulated looks: {first.run.id} is "
                              f"{(first.sim_world or {}).get('render')}, {other.run.id} is "
                              f"{(other.sim_world or {}).get('render')}", "merge recordings of one look")  # fmt: skip
    episodes = [(s, i) for s, source in enumerate(sources) for i in range(source.total)]
    return Derived(None, sources, episodes, operation={"operation": "merge"})


def _shapes(source: Source) -> dict[str, list[int]]:
    return {key: list(feature.get("shape", [])) for key, feature in source.info["features"].items()}
