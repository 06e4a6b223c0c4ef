"""Recorded datasets read back (for training, reports, viz) and merged, through ``LeRobotDataset``.

Kept apart from the recorder: reading a dataset needs neither MuJoCo nor the device types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lerobot.datasets import LeRobotDataset

from runner.lerobot_adapter.checkpoints import IMAGES

VIDEO_BACKEND = "pyav"  # decodes everywhere; torchcodec needs a system FFmpeg


def merge(roots: list[Path], output: Path, repo_id: str) -> tuple[Path, str]:
    """Several recorded datasets as one new dataset at ``output`` (LeRobot's merge_datasets)."""
    from lerobot.datasets.dataset_tools import merge_datasets

    sources = [LeRobotDataset(f"local/{root.parent.name}", root=root, video_backend=VIDEO_BACKEND) for root in roots]
    merge_datasets(sources, repo_id, output_dir=output)
    return output, repo_id


def load_dataset(root: Path, repo_id: str) -> LeRobotDataset:
    """A recorded dataset, read-only, decoding video with pyav."""
    return LeRobotDataset(repo_id, root=root, video_backend=VIDEO_BACKEND)


@dataclass
class DatasetTables:
    """A recorded dataset's numbers as arrays, one row per frame, for reports."""

    dataset: LeRobotDataset
    fps: int
    episode_index: np.ndarray
    state: np.ndarray
    action: np.ndarray
    joints: list[str]  # the state's and action's columns, without the ".pos" suffix
    cameras: list[str]  # camera roles

    def image(self, frame: int, role: str) -> np.ndarray:
        """One camera image of one frame, decoded: height x width x 3, floats in 0..1."""
        return self.dataset[frame][f"{IMAGES}{role}"].numpy().transpose(1, 2, 0)


def read_dataset(root: Path, repo_id: str) -> DatasetTables:
    dataset = load_dataset(root, repo_id)
    frames = dataset.hf_dataset.with_format("numpy")
    return DatasetTables(
        dataset=dataset,
        fps=int(dataset.fps),
        episode_index=np.asarray(frames["episode_index"]),
        state=np.stack(frames["observation.state"]),
        action=np.stack(frames["action"]),
        joints=[name.removesuffix(".pos") for name in dataset.features["observation.state"]["names"]],
        cameras=[key.removeprefix(IMAGES) for key in dataset.meta.camera_keys],
    )


def episode_first_frames(root: Path, repo_id: str, episodes: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """The first frame of each of ``episodes``, every camera decoded: episode -> role -> uint8 (h, w, 3)."""
    return first_frames(load_dataset(root, repo_id), episodes)


def first_frames(dataset: LeRobotDataset, episodes: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """``episode_first_frames`` of a dataset already loaded."""
    index = np.asarray(dataset.hf_dataset.with_format("numpy")["episode_index"])
    frames = {}
    for episode in episodes:
        first = int(np.argmax(index == episode))
        item = dataset[first]
        frames[episode] = {
            key.removeprefix(IMAGES): (item[key].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
            for key in dataset.meta.camera_keys
        }
    return frames
