"""The disk under the outputs tree: is it writable, how much is free, and what a full disk means for a run.

Stages check before they start (a read-only or too full disk is a config error on ``paths.outputs``) and
between units of work (an episode, a checkpoint), so that a filling disk stops a run at a clean boundary
with what it saved intact, instead of failing in the middle of a write.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from runner.core.errors import ConfigError
from runner.episodes.scenarios import max_frames

if TYPE_CHECKING:
    from omegaconf import DictConfig

MB = 1e6
# Bytes per pixel of what a recording writes, deliberately on the high side: a camera frame staged as PNG
# (LeRobot writes compress level 1, about half of raw RGB) until its episode is encoded, and the same frame
# in the episode's AV1 video (well under 1 bit per pixel; 1 assumed).
PNG_BYTES_PER_PIXEL = 1.5
VIDEO_BYTES_PER_PIXEL = 1 / 8
# The errors a full or read-only disk raises (quota exceeded counts as full).
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest parent that exists: where a folder about to be created would live."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(existing_ancestor(path)).free


def disk_error(error: BaseException | None) -> str | None:
    """Why ``error`` (or its cause or context) is a full or read-only disk ("No space left on device"), else
    None. Writers that are not Python's own report it in their message only (safetensors, torch.save, a rank
    of an accelerate launch), so the message is read too."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            return error.strerror or os.strerror(error.errno)
        text = str(error)
        for code in DISK_ERRNOS:
            if os.strerror(code) in text or f"code: {code}," in text:
                return os.strerror(code)
        error = error.__cause__ or error.__context__
    return None


def recording_bytes(cfg: DictConfig, episodes: int) -> int:
    """The disk a recording of ``episodes`` episodes may take at its peak: one episode's frames staged as images
    while it is recorded, plus every episode's video."""
    pixels = sum(camera.width * camera.height for camera in cfg.cameras.values())
    frames = max_frames(cfg.episode)
    return round(pixels * frames * (PNG_BYTES_PER_PIXEL + episodes * VIDEO_BYTES_PER_PIXEL))


def require_writable(outputs_root: Path) -> None:
    """The outputs root (or where it will be created) accepts new files; else a config error, before any run."""
    where = existing_ancestor(outputs_root)
    if not os.access(where, os.W_OK | os.X_OK):
        readonly = bool(os.statvfs(where).f_flag & os.ST_RDONLY)
        problem = "is on a read-only filesystem" if readonly else "is not writable by this user"
        raise ConfigError(
            "paths.outputs",
            f"({outputs_root}) {problem}" + ("" if where == Path(outputs_root).absolute() else f" (at {where})"),
            "point paths.outputs=... (or RUNNER_OUTPUTS) at a writable folder, or remount the disk read-write",
        )


def require_free(outputs_root: Path, needed: int, what: str) -> None:
    """At least ``needed`` bytes free where the outputs root lives, before a run starts."""
    free = free_bytes(outputs_root)
    if free < needed:
        raise ConfigError(
            "paths.outputs",
            f"({outputs_root}) has {free / MB:.1f} MB free, but {what} needs up to {needed / MB:.1f} MB",
            "free some space (old runs: `runner runs`), or point paths.outputs=... at a larger disk",
        )


class DiskFull(OSError):
    """The disk under a run filled up (or turned read-only) while the run was writing; nothing saved is lost."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        return type(self), (self.message,)
