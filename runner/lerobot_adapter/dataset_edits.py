"""New datasets made from recorded ones with LeRobot's dataset tools (``lerobot.datasets.dataset_tools``, what
``lerobot-edit-dataset`` runs): keep some episodes, merge, rewrite task strings. Sources are only read; every
result is written into a folder of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

from runner.lerobot_adapter.datasets import load_dataset, merge


def keep_episodes(source: Path, episodes: list[int], output: Path) -> None:
    """A copy of ``source`` holding only ``episodes`` (renumbered 0.. in their order), at ``output``."""
    from lerobot.datasets.dataset_tools import delete_episodes

    dataset = load_dataset(source, f"local/{source.parent.name}")
    dropped = sorted(set(range(dataset.meta.total_episodes)) - set(episodes))
    if not dropped:
        shutil.copytree(source, output)
        return
    delete_episodes(dataset, dropped, output_dir=output, repo_id=f"local/{output.parent.name}")


def merge_datasets(sources: list[Path], output: Path) -> None:
    """The episodes of every source, in order, as one dataset at ``output``."""
    merge(sources, output, f"local/{output.parent.name}")


def set_tasks(root: Path, episode_tasks: dict[int, str]) -> None:
    """Give episodes new task strings, in place (``root`` is a dataset this run made)."""
    from lerobot.datasets.dataset_tools import modify_tasks

    modify_tasks(load_dataset(root, f"local/{root.parent.name}"), episode_tasks=episode_tasks)
