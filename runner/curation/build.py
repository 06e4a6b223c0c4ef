"""Carry out a plan (runner.curation.plans): each derived dataset is a run of its own (stage ``dataset``) under
the first source's experiment, its sources as parents and the operation in run.json. The dataset is built in
a scratch folder inside the run and renamed into place when whole: a kill leaves the sources untouched and
no half dataset where a training would read one."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from runner.core import layout
from runner.core.run import utility_run
from runner.curation.plans import Derived
from runner.episodes.table import EpisodesTable

log = logging.getLogger("runner.dataset")

STAGE = "dataset"
SCRATCH = "dataset.partial"
# Columns this command adds to runner_episodes.csv: where each episode came from.
SOURCE_COLUMNS = ("source_run", "source_episode")


def build(derived: Derived, argv: list[str]) -> str:
    """Make the dataset run; returns its id."""
    from runner.lerobot_adapter import dataset_edits

    sources = derived.sources
    parents = list(dict.fromkeys(s.run.id for s in sources))
    with utility_run(sources[0].run.path.parent, STAGE, argv, parents) as run:
        run.update(dataset_operation={**derived.operation, "part": derived.part, "sources": parents,
                                      "episodes": [[sources[s].run.id, e] for s, e in derived.episodes]})  # fmt: skip
        scratch, final = run.dir / SCRATCH, run.dir / layout.DATASET_DIR
        if len(sources) > 1:
            dataset_edits.merge_datasets([s.root for s in sources], scratch)
        else:
            dataset_edits.keep_episodes(sources[0].root, [e for _, e in derived.episodes], scratch)
        if derived.tasks:
            dataset_edits.set_tasks(scratch, derived.tasks)
        _write_tables(derived, scratch)
        scratch.rename(final)
        run.add_artifact(layout.DATASET_DIR)
        run.update(dataset={"episodes": len(derived.episodes), "tasks_rewritten": len(derived.tasks)})
        log.info("%s: %d episodes from %s -> %s", derived.operation["operation"], len(derived.episodes),
                 ", ".join(parents), final)  # fmt: skip
    return run.id


def _write_tables(derived: Derived, dataset: Path) -> None:
    """runner's per-episode table (renumbered, with each episode's source) and the simulated look travel with
    the new dataset: LeRobot's tools keep only LeRobot's own files."""
    columns: list[str] = []
    for source in derived.sources:
        columns += [c for c in (source.rows[0] if source.rows else {}) if c not in columns]
    columns = [*(columns or ["dataset_episode", "kept"]), *(c for c in SOURCE_COLUMNS if c not in columns)]
    rows = []
    for new, (index, episode) in enumerate(derived.episodes):
        source = derived.sources[index]
        row = dict(source.rows[episode]) if source.rows else {"kept": "True"}
        row |= {"dataset_episode": str(new), "source_run": source.run.id, "source_episode": str(episode)}
        if new in derived.tasks and "instruction" in row:
            row["instruction"] = derived.tasks[new]
        rows.append(row)
    EpisodesTable(dataset / layout.DATASET_EPISODES_CSV, columns).replace(rows)
    world = derived.sources[0].root / layout.DATASET_SIM_WORLD
    if world.exists():
        shutil.copy2(world, dataset / layout.DATASET_SIM_WORLD)
