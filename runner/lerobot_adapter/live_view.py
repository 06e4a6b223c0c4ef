"""A live view of a robot's cameras and joints in Rerun, through LeRobot's own visualization utilities.

Rerun is optional (LeRobot's ``viz`` extra); ``available()`` says whether it is installed before anything
tries to import it.
"""

from __future__ import annotations

import importlib.util

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
