"""An emulated camera: a LeRobot camera type that plays a video file, a still image of a scene (with a sensor's
noise, so a frozen stream stays detectable), or a generated test pattern, in real time.

It stands in for a USB camera where none is attached (tests, ``runner emulate``), so the real-robot code
path (LeRobot's SO follower reading ``read_latest()`` from each camera) runs unchanged. LeRobot's OpenCV
camera cannot do this with a file: it reads a file as fast as it decodes and runs out of frames in a blink.
Frames are chosen by wall-clock time at the configured fps and loop forever.

The faults real cameras have can be switched on while it runs, by writing one word into its ``faults`` file:
``unplug`` (the device is gone), ``hang`` (no new frame arrives: LeRobot's stale-frame timeout), ``freeze``
(frames keep coming but the image is stuck) and ``drop`` (only every third frame is new, as behind a busy
USB hub). Each fails as LeRobot's OpenCV camera fails in that situation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from lerobot.cameras import CameraConfig, ColorMode
from lerobot.cameras.camera import Camera
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

PATTERN = "pattern"
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# A still scene's sensor noise (standard deviation, of 255): a real camera never delivers two equal frames.
SENSOR_NOISE = 1.5
PATTERN_SECONDS = 2
FAULTS = ("unplug", "hang", "freeze", "drop")
# With the drop fault, one new frame in this many.
DROP_EVERY = 3


@CameraConfig.register_subclass("runner_emulated")
@dataclass(kw_only=True)
class EmulatedCameraConfig(CameraConfig):
    # A video file to loop, an image (.png/.jpg/.bmp: a static scene), or "pattern" for a moving test pattern.
    source: str = PATTERN
    color_mode: ColorMode = ColorMode.RGB
    # New frames per second actually delivered, when lower than fps (a camera behind a busy USB hub).
    delivered_fps: int | None = None
    # A file naming the fault to play now (one of FAULTS; empty or missing: none), for fault injection.
    faults: str | None = None

    def __post_init__(self) -> None:
        if None in (self.fps, self.width, self.height):
            raise ValueError("an emulated camera needs fps, width and height")
        if self.source != PATTERN and not Path(self.source).is_file():
            raise ValueError(f"emulated camera source {self.source} is not a video or image file (or use '{PATTERN}')")


def _pattern(width: int, height: int, count: int) -> list[np.ndarray]:
    """A gradient with a bright bar sweeping across: every frame differs, so a frozen stream is visible."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 96.0)], axis=-1).astype(np.uint8)  # fmt: skip
    frames = []
    for index in range(count):
        frame = base.copy()
        left = index * width // count
        frame[:, left : left + max(2, width // 16)] = 255
        frames.append(frame)
    return frames


def _still(path: str, width: int, height: int, count: int) -> list[np.ndarray]:
    """A static scene as a camera sees it: the image at the camera's size, each frame with its own noise."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ConnectionError(f"emulated camera: {path} is not a readable image")
    scene = cv2.cvtColor(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    noise = np.random.default_rng(0)
    return [np.clip(scene + noise.normal(0, SENSOR_NOISE, scene.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def _video(path: str, width: int, height: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise ConnectionError(f"emulated camera: {path} holds no decodable frame")
    return frames


class EmulatedCamera(Camera):
    """Frames of a video file, a still scene or a test pattern, picked by wall-clock time at ``fps``, looping."""

    def __init__(self, config: EmulatedCameraConfig) -> None:
        super().__init__(config)
        self.config = config
        self._frames: list[np.ndarray] | None = None
        self._started = 0.0
        self._stuck: tuple[float, np.ndarray] | None = None  # since when, and which frame, it hangs or freezes

    def __str__(self) -> str:
        return f"EmulatedCamera({self.config.source})"

    @property
    def is_connected(self) -> bool:
        return self._frames is not None

    @staticmethod
    def find_cameras() -> list[dict]:
        return []  # nothing to discover: an emulated camera exists when a config names it

    def connect(self, warmup: bool = True) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self} is already connected")
        width, height, fps = self.config.width, self.config.height, self.config.fps
        if self.config.source == PATTERN:
            self._frames = _pattern(width, height, PATTERN_SECONDS * fps)
        elif Path(self.config.source).suffix.lower() in STILL_SUFFIXES:
            self._frames = _still(self.config.source, width, height, PATTERN_SECONDS * fps)
        else:
            self._frames = _video(self.config.source, width, height)
        self._started = time.perf_counter()

    @property
    def _rate(self) -> int:
        return self.config.delivered_fps or self.config.fps

    def _index(self, at: float) -> int:
        return int((at - self._started) * self._rate)

    def _frame(self, index: int) -> np.ndarray:
        if self._frames is None:
            raise DeviceNotConnectedError(f"{self} is not connected")
        frame = self._frames[index % len(self._frames)]
        return frame[..., ::-1].copy() if self.config.color_mode == ColorMode.BGR else frame.copy()

    def _fault(self) -> str | None:
        if self.config.faults is None:
            return None
        try:
            fault = Path(self.config.faults).read_text().strip() or None
        except FileNotFoundError:
            fault = None
        if fault not in (None, *FAULTS):
            raise ValueError(f"{self}: unknown fault '{fault}' in {self.config.faults} (one of {', '.join(FAULTS)})")
        if fault not in ("hang", "freeze"):
            self._stuck = None
        return fault

    def _current(self, max_age_ms: float | None) -> np.ndarray:
        now = time.perf_counter()
        fault = self._fault()
        if fault == "unplug":  # what LeRobot's OpenCV camera says once its device is gone
            raise RuntimeError(f"{self} read thread is not running.")
        if fault in ("hang", "freeze"):
            if self._stuck is None:
                self._stuck = (now, self._frame(self._index(now)))
            since, frame = self._stuck
            age_ms = (now - since) * 1e3
            if fault == "hang" and max_age_ms is not None and age_ms > max_age_ms:
                raise TimeoutError(f"{self} latest frame is too old: {age_ms:.1f} ms (max allowed: {max_age_ms} ms).")
            return frame.copy()
        index = self._index(now)
        if fault == "drop":
            index -= index % DROP_EVERY
        return self._frame(index)

    def read(self) -> np.ndarray:
        return self._current(None)

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        """The next frame: waits for the next frame time, as a camera delivering at its rate would."""
        now = time.perf_counter()
        index = self._index(now) + 1
        wait = self._started + index / self._rate - now
        if wait * 1000 > timeout_ms:
            raise TimeoutError(f"{self}: no frame within {timeout_ms} ms at {self._rate} fps")
        time.sleep(max(0.0, wait))
        return self._frame(index) if self._fault() is None else self._current(timeout_ms)

    def read_latest(self, max_age_ms: int = 500) -> np.ndarray:
        return self._current(max_age_ms)

    def disconnect(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        self._frames = None
