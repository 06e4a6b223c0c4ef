"""What a camera really delivers: opened with OpenCV at the requested mode, frames timed, one kept.

Cameras promise modes they do not deliver (a USB hub halves the frame rate, a fourcc is ignored), and a
camera's index changes between machines. These probes measure instead of trusting: resolution, fourcc and
the frame rate actually achieved, for ``runner doctor`` and ``runner find-cameras``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Where udev keeps stable camera names; tests point it at a folder of video files.
BY_ID_ENV = "RUNNER_VIDEO_BY_ID"
# A host profile's camera value that stands an emulated camera in for a device: `emulated:pattern` or
# `emulated:<video or image file>`, optionally `@<delivered fps>` and `?faults=<file>`
# (runner.lerobot_adapter.emulated_camera).
EMULATED_PREFIX = "emulated:"


@dataclass
class CameraProbe:
    device: str
    opened: bool
    width: int = 0
    height: int = 0
    fourcc: str = ""
    measured_fps: float = 0.0
    frame: np.ndarray | None = None  # the last frame, RGB


def list_cameras() -> list[str]:
    """Camera devices by their most stable name: /dev/v4l/by-id on Linux, else /dev/video*, else indices."""
    by_id = Path(os.environ.get(BY_ID_ENV, "/dev/v4l/by-id"))
    if by_id.is_dir():
        return sorted(str(p) for p in by_id.iterdir() if not p.name.endswith(("-index1", "-index2", "-index3")))
    videos = sorted(str(p) for p in Path("/dev").glob("video*"))
    return videos or [str(i) for i in range(4)]  # macOS: AVFoundation indices


def probe_camera(device: str, width: int | None = None, height: int | None = None, fps: int | None = None,
                 fourcc: str | None = None, frames: int = 30) -> CameraProbe:  # fmt: skip
    """Open ``device`` (an index or a path), ask for the mode, read ``frames`` frames and time them."""
    import cv2

    capture = cv2.VideoCapture(int(device) if device.isdigit() else device, cv2.CAP_ANY)
    if not capture.isOpened():
        return CameraProbe(device, opened=False)
    try:
        if fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):  # fmt: skip
            if value:
                capture.set(prop, value)
        ok, frame = capture.read()  # the first frame pays for start-up: not timed
        if not ok:
            return CameraProbe(device, opened=False)
        started, read = time.perf_counter(), 0
        for _ in range(frames):
            ok, next_frame = capture.read()
            if not ok:
                break
            frame, read = next_frame, read + 1
        elapsed = time.perf_counter() - started
        code = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").strip("\x00")
        return CameraProbe(
            device, True, width=frame.shape[1], height=frame.shape[0], fourcc=code,
            measured_fps=read / elapsed if elapsed > 0 and read else 0.0,
            frame=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB),
        )  # fmt: skip
    finally:
        capture.release()
