"""A recorded dataset pushed to the Hub by LeRobot's own ``LeRobotDataset.push_to_hub``: its files (staged PNGs
left out), the dataset card, and the codebase-version tag LeRobot's loader looks for."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.lerobot_adapter.datasets import load_dataset

log = logging.getLogger("runner.hub")

PUBLIC_ENDPOINT = "https://huggingface.co"


def codebase_version() -> str:
    """The tag LeRobot's loader resolves a dataset repo to (``v3.0`` for LeRobot 0.6)."""
    from lerobot.datasets import CODEBASE_VERSION

    return CODEBASE_VERSION


@contextmanager
def _card_validation_for(endpoint: str) -> Iterator[None]:
    """``RepoCard.push_to_hub`` validates the card by posting it to huggingface.co whatever ``HF_ENDPOINT`` says:
    a lab's own Hub (or one behind a firewall) would fail every push there. Off the public Hub the card is
    pushed unvalidated; on it, validated as always."""
    from huggingface_hub.repocard import RepoCard

    if endpoint.rstrip("/") == PUBLIC_ENDPOINT:
        yield
        return
    log.info(
        "dataset card not validated: huggingface_hub validates cards only on %s, and HF_ENDPOINT is %s",
        PUBLIC_ENDPOINT,
        endpoint,
    )
    validate = RepoCard.validate
    RepoCard.validate = lambda self, repo_type=None: None
    try:
        yield
    finally:
        RepoCard.validate = validate


def push_dataset(root: Path, repo_id: str, private: bool, tags: list[str], endpoint: str) -> str:
    """Push the dataset at ``root`` to dataset repo ``repo_id``; returns the version tag it was given.

    ``upload_folder`` (which LeRobot calls) resumes an interrupted upload when run again: files already
    committed are skipped, so a second push after a dropped link sends only what is missing."""
    dataset = load_dataset(root, repo_id)
    with _card_validation_for(endpoint):
        dataset.push_to_hub(tags=tags, private=private, license="apache-2.0")
    return codebase_version()
