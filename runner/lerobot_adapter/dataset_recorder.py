"""Episodes recorded into a LeRobot dataset, crash-safe, through LeRobot's own classes.

Frames go through LeRobot's default processors and ``build_dataset_frame`` exactly as in ``lerobot-record``;
episodes are written by ``LeRobotDataset``. What runner adds is crash safety: every kept episode is
finalized (parquet footers and metadata on disk) and the dataset reopened, so a SIGKILL loses at most the
episode being recorded; and each save is a transaction (``SavedState``), so a save that fails half-way (a
full disk, a kill) is rolled back to the episodes kept before it. With streaming encoding (the default) each
camera's video is encoded while the episode is recorded; an episode whose encoder fell behind and dropped a
frame is refused, and the unfinished video a kill leaves is removed when the run resumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

import av
from lerobot.configs.video import RGBEncoderConfig, encoder_config_from_video_info
from lerobot.datasets import LeRobotDataset, aggregate_pipeline_dataset_features, create_initial_features, image_writer
from lerobot.processor import make_default_processors
from lerobot.robots.robot import Robot
from lerobot.utils.constants import ACTION, OBS_STR
from lerobot.utils.feature_utils import build_dataset_frame, combine_feature_dicts

from runner.core import layout, outputs
from runner.core.errors import ConfigError
from runner.lerobot_adapter.checkpoints import IMAGES
from runner.lerobot_adapter.datasets import VIDEO_BACKEND
from runner.schema.recording import DatasetConfig

log = logging.getLogger("runner.hardware")
STAGED_IMAGES = "images"


def clean_staged_frames(root: Path) -> int:
    """Remove the PNGs a crashed episode left staged under ``<root>/images``; returns how many."""
    staged = root / STAGED_IMAGES
    if not staged.exists():
        return 0
    count = sum(1 for _ in staged.rglob("*.png"))
    shutil.rmtree(staged)
    return count


def roll_back_interrupted_save(root: Path) -> bool:
    """After a crash: undo an episode save the process did not finish; True when there was one."""
    state = SavedState(root)
    if not state.path.exists():
        return False
    state.restore()
    return True


class SavedState:
    """A dataset's files as they were before an episode's save, beside it on the same disk, so that a save that
    fails half-way can be undone.

    LeRobot rewrites the files directly under ``meta/`` in place (info, stats, tasks): those are copied. Every
    other file it only ever adds or replaces whole: those are hard-linked, which costs no space (where the
    filesystem has no hard links they are only listed; files LeRobot adds are what a roll-back removes). The
    manifest is written last; a state without one was never complete and the dataset was not touched yet.
    """

    MANIFEST = "manifest.json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root.with_name(f".{root.name}.saving")

    def _files(self, top: Path) -> list[Path]:
        staged = top / STAGED_IMAGES
        return sorted(p for p in top.rglob("*") if p.is_file() and staged not in p.parents)

    def take(self) -> None:
        self.drop()
        manifest = []
        try:
            for file in self._files(self.root):
                relative = file.relative_to(self.root)
                target = self.path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if file.parent == self.root / layout.DATASET_META:
                    shutil.copy2(file, target)
                else:
                    with contextlib.suppress(OSError):
                        os.link(file, target)
                manifest.append(str(relative))
            outputs.write_json_atomic(self.path / self.MANIFEST, manifest)
        except BaseException:  # no room even for the copies: the dataset is untouched, nothing to keep
            self.drop()
            raise

    def restore(self) -> None:
        """Put the dataset back as it was at ``take`` (idempotent: a restore cut short can be run again)."""
        manifest_file = self.path / self.MANIFEST
        if manifest_file.exists():
            kept = set(json.loads(manifest_file.read_text()))
            for file in self._files(self.root):
                if str(file.relative_to(self.root)) not in kept:
                    file.unlink()
            for relative in kept:
                saved = self.path / relative
                if saved.exists():
                    (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(saved, self.root / relative)
        self.drop()

    def drop(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)


class _FrameWriteErrors(logging.Filter):
    """LeRobot's image writer threads log a frame they could not write, and go on: collect those errors, and
    let only the first reach the log (a full disk fails every frame after it)."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        error = next((a for a in record.args or () if isinstance(a, BaseException)), None)
        self.errors.append(error or OSError(record.getMessage()))
        return len(self.errors) == 1


def video_encoder(vcodec: str, settings: dict | None = None) -> RGBEncoderConfig:
    """LeRobot's encoder for ``dataset.vcodec``, with its defaults (a keyframe every 2 frames, crf 30) unless
    ``settings`` (a video feature's info in meta/info.json) says otherwise."""
    try:
        if settings is not None:
            return encoder_config_from_video_info(settings)
        return RGBEncoderConfig(vcodec=str(vcodec))
    except ValueError as error:  # not a codec LeRobot knows, or one this PyAV build cannot encode
        recorded = f" (the dataset's videos are {settings.get('video.codec')}, as its new episodes must be)"
        raise ConfigError(
            "dataset.vcodec",
            f"is '{vcodec}'{recorded if settings is not None else ''}: {error}",
            "use h264 (the default), hevc or libsvtav1; a dataset's codec cannot change on resume",
        ) from None


def recorded_video_info(root: Path) -> dict | None:
    """How a dataset's videos were encoded (a video feature's info in meta/info.json); None before the first."""
    info = root / layout.DATASET_INFO
    if not info.exists():
        return None
    for feature in json.loads(info.read_text()).get("features", {}).values():
        if feature.get("dtype") == "video" and "video.codec" in (feature.get("info") or {}):
            return feature["info"]
    return None


class EncoderFellBehind(RuntimeError):
    """LeRobot's streaming encoder dropped frames of the episode: its video would be shorter than its data."""

    def __init__(self, dropped: dict[str, int]) -> None:
        counts = ", ".join(f"{n} of {key.removeprefix(IMAGES)}" for key, n in dropped.items())
        super().__init__(
            f"the video encoder fell behind and dropped frames ({counts}): the episode was not kept. "
            "Record with dataset.streaming_encoding=false (videos are encoded after each episode) or a faster "
            "dataset.vcodec"
        )


class DatasetRecorder:
    """One LeRobot dataset being recorded: frames in, episodes kept or discarded, always loadable."""

    def __init__(
        self,
        root: Path,
        repo_id: str,
        fps: int,
        robot: Robot,
        use_videos: bool,
        resume: bool,
        vcodec: str = DatasetConfig.vcodec,
        streaming_encoding: bool = DatasetConfig.streaming_encoding,
    ) -> None:
        self.root, self.repo_id, self.fps = root, repo_id, fps
        self.streaming_encoding = streaming_encoding
        if resume and not (root / layout.DATASET_INFO).exists():
            # Killed while LeRobot was creating the dataset, before its metadata: nothing was saved, and
            # LeRobot would look for the dataset on the Hub. Start it afresh.
            shutil.rmtree(root, ignore_errors=True)
            resume = False
        # A resumed dataset goes on with the encoder its videos were made with (a run saved before
        # dataset.vcodec existed has today's default in its config, not the codec on disk): meta/info.json
        # holds one codec for every episode, and merging datasets joins their videos by stream copy.
        recorded = recorded_video_info(root) if resume else None
        self.encoder = video_encoder(vcodec, recorded)
        if recorded is not None and self.encoder.vcodec != video_encoder(vcodec).vcodec:
            log.warning("the dataset's videos are %s: its new episodes are too, not dataset.vcodec=%s",
                        self.encoder.vcodec, vcodec)  # fmt: skip
        if use_videos:
            when = "while recording" if streaming_encoding else "after each episode"
            log.info("videos: %s, encoded %s", self.encoder.vcodec, when)
            # LeRobot's encoder threads hand FFmpeg's log back to FFmpeg's own printer when they finish, which
            # would print the encoder's statistics (libx264's) on the console: errors only.
            av.logging.set_libav_level(av.logging.ERROR)
        teleop_processor, _, self._observation_processor = make_default_processors()
        self.features = combine_feature_dicts(
            aggregate_pipeline_dataset_features(
                pipeline=teleop_processor,
                initial_features=create_initial_features(action=robot.action_features),
                use_videos=use_videos,
            ),
            aggregate_pipeline_dataset_features(
                pipeline=self._observation_processor,
                initial_features=create_initial_features(observation=robot.observation_features),
                use_videos=use_videos,
            ),
        )
        self._n_cameras = sum(1 for f in self.features.values() if f["dtype"] in ("video", "image"))
        self._write_errors = _FrameWriteErrors()
        logging.getLogger(image_writer.__name__).addFilter(self._write_errors)
        if resume:
            self._remove_unsaved_videos()
            self.dataset = self._reopen()
            if self.dataset.fps != fps:
                raise ConfigError(
                    "episode.fps", f"is {fps} but the dataset was recorded at {self.dataset.fps}", "keep the fps"
                )
        else:
            self.dataset = LeRobotDataset.create(
                repo_id,
                fps,
                root=root,
                robot_type=robot.name,
                features=self.features,
                use_videos=use_videos,
                image_writer_threads=2 * self._n_cameras,
                video_backend=VIDEO_BACKEND,
                rgb_encoder=self.encoder,
                streaming_encoding=self.streaming_encoding,
            )

    def _reopen(self) -> LeRobotDataset:
        return LeRobotDataset.resume(
            self.repo_id,
            root=self.root,
            video_backend=VIDEO_BACKEND,
            image_writer_threads=2 * self._n_cameras,
            rgb_encoder=self.encoder,
            streaming_encoding=self.streaming_encoding,
        )

    @property
    def num_episodes(self) -> int:
        return self.dataset.num_episodes

    def add_frame(self, observation: dict, action: dict, task: str) -> None:
        processed = self._observation_processor(observation)
        frame = build_dataset_frame(self.features, processed, prefix=OBS_STR)
        frame |= build_dataset_frame(self.features, action, prefix=ACTION)
        self.dataset.add_frame({**frame, "task": task})

    def keep_episode(self) -> None:
        """Save the episode, then finalize and reopen so that everything saved so far survives a kill.

        All or nothing: a camera frame that could not be written (its error is raised), or a save that fails
        half-way, leaves the dataset as it was before this episode.
        """
        self._wait_for_frames()
        self.raise_write_error()
        self._raise_dropped_frames()
        state = SavedState(self.root)
        state.take()
        try:
            self.dataset.save_episode()
            self.dataset.finalize()
        except BaseException:
            with contextlib.suppress(Exception):
                self.dataset.finalize()  # closes LeRobot's writers before their files are removed
            state.restore()
            self._remove_unsaved_videos()
            self.dataset = self._reopen()
            raise
        state.drop()
        self.dataset = self._reopen()

    def raise_write_error(self) -> None:
        """Raise the first error of a camera frame that could not be written to disk, if any."""
        if self._write_errors.errors:
            raise self._write_errors.errors[0]

    def _raise_dropped_frames(self) -> None:
        """With streaming encoding, LeRobot drops a frame its encoder has no room for (and only logs it): the
        video would then be shorter than the episode's data and every later frame shown at the wrong time."""
        encoder = getattr(self.dataset.writer, "_streaming_encoder", None)  # LeRobot 0.6.1's names
        dropped = {key: n for key, n in getattr(encoder, "_dropped_frames", {}).items() if n}
        if dropped:
            raise EncoderFellBehind(dropped)

    def _remove_unsaved_videos(self) -> None:
        """LeRobot encodes an episode's videos in a temporary folder of the dataset (``tmp*``) and moves them in
        place when it saves the episode: a kill or a failed save before that leaves the folder behind."""
        for folder in self.root.glob("tmp*"):
            if folder.is_dir() and all(p.suffix == ".mp4" for p in folder.rglob("*") if p.is_file()):
                shutil.rmtree(folder)

    def _wait_for_frames(self) -> None:
        """Until every staged frame is on disk, or its write error logged."""
        writer = self.dataset.writer.image_writer if self.dataset.writer is not None else None
        if writer is not None:
            writer.wait_until_done()

    def discard_episode(self) -> None:
        self._wait_for_frames()  # a frame still being written would outlive the delete
        self._write_errors.errors.clear()
        self.dataset.clear_episode_buffer()

    def close(self) -> None:
        """Drop an unfinished episode and finalize; safe to call more than once."""
        if self.dataset.has_pending_frames():
            self.discard_episode()
        self.dataset.finalize()
        logging.getLogger(image_writer.__name__).removeFilter(self._write_errors)
        staged = self.root / STAGED_IMAGES
        if staged.is_dir() and not any(p.is_file() for p in staged.rglob("*")):
            shutil.rmtree(staged)
