"""Rerun views through LeRobot's own visualization code: a robot's cameras and joints live, or a dataset.

Rerun is optional (LeRobot's ``viz`` extra); ``available()`` says whether it is installed before anything
tries to import it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODE = "rerun"


def available() -> bool:
    return importlib.util.find_spec("rerun") is not None


def start(session: str) -> None:
    from lerobot.utils.visualization_utils import init_visualization

    init_visualization(MODE, session_name=session)


def show(observation: dict, action: dict) -> None:
    from lerobot.utils.visualization_utils import log_visualization_data

    log_visualization_data(MODE, observation=observation, action=action)


def stop() -> None:
    from lerobot.utils.visualization_utils import shutdown_visualization

    shutdown_visualization(MODE)


def show_dataset(root: Path, repo_id: str, episode: int) -> None:
    """LeRobot's own dataset visualiser (lerobot-dataset-viz) on one episode, in a Rerun viewer."""
    from lerobot.scripts.lerobot_dataset_viz import visualize_dataset

    from runner.lerobot_adapter.datasets import load_dataset

    visualize_dataset(load_dataset(root, repo_id), episode_index=episode)
