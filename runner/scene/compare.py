"""One camera's view now against its reference: the rigid motion between them, and what changed beyond it.

The motion is registered on locally normalised grey levels (each pixel against its neighbourhood, which a
brighter or dimmer room leaves nearly as it was): phase correlation gives the shift, OpenCV's ECC on a
Euclidean model refines it and adds the rotation. The live view is then warped onto the reference, each
colour's overall gain and offset (the lighting) matched to the reference's, and a pixel counts as changed
when a colour still differs by more than ``CHANGED_LEVEL``: a red cube on a dark blue floor is nearly the
floor's grey, so colours are compared, not grey levels.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

# The registration's normalisation window (pixels at 128 px wide, scaled with the image).
NORMALISE_SIGMA = 3.0
# The colour comparison's blur (pixels): about the colour resolution of 4:2:0 video.
COLOUR_SIGMA = 1.0
# How far (of 255) a colour may be from the reference's, after matching the lighting, before a pixel changed.
CHANGED_LEVEL = 40.0
# A live frame darker than this (mean of 0..255), or with almost no contrast, shows nothing to compare.
BLACK_MEAN = 8.0
FLAT_STD = 2.0


@dataclass(frozen=True)
class SceneDifference:
    """How one camera's view differs from its reference."""

    shift_px: float  # how far the image moved, at its centre
    shift_x_px: float
    shift_y_px: float
    rotation_deg: float
    similarity: float  # correlation of the aligned images' grey levels (1: the same view)
    changed_fraction: float  # share of the compared pixels whose colour changed beyond the motion
    width: int
    height: int

    def record(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


class NothingToCompare(ValueError):
    """A live frame that shows nothing (black, or flat: a covered lens, a camera not streaming yet)."""


def grey(image: np.ndarray) -> np.ndarray:
    """float32 grey levels 0..255 of an RGB (h, w, 3) or grey (h, w) uint8 image."""
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image.astype(np.float32)


def normalised(image: np.ndarray) -> np.ndarray:
    """Each pixel relative to its neighbourhood (zero mean, unit spread)."""
    sigma = NORMALISE_SIGMA * image.shape[1] / 128
    mean = cv2.GaussianBlur(image, (0, 0), sigma)
    spread = np.sqrt(np.maximum(cv2.GaussianBlur((image - mean) ** 2, (0, 0), sigma), 0))
    return (image - mean) / (spread + 4.0)  # + 4: a plain floor stays near zero instead of amplified noise


def check_live_frame(image: np.ndarray) -> None:
    level = grey(image)
    if level.mean() < BLACK_MEAN:
        raise NothingToCompare(f"the frame is black (mean level {level.mean():.1f} of 255)")
    if level.std() < FLAT_STD:
        raise NothingToCompare(f"the frame is flat (its grey levels spread by {level.std():.1f})")


def _motion(reference: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The 2x3 Euclidean warp taking reference pixel coordinates to live ones."""
    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(reference, live, window)
    warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    with contextlib.suppress(cv2.error):  # ECC did not converge: the phase correlation's shift stands
        _, warp = cv2.findTransformECC(reference, live, warp, cv2.MOTION_EUCLIDEAN, criteria, None, 5)
    return warp


def _colour_detail(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), COLOUR_SIGMA)
    return blurred.reshape(image.shape)


def _onto_reference(image: np.ndarray, warp: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.warpAffine(image, warp, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP)


def compare(reference: np.ndarray, live: np.ndarray) -> tuple[SceneDifference, np.ndarray]:
    """How ``live`` differs from ``reference`` (uint8 images of one size, RGB or grey), and the mask of the
    reference's pixels that changed."""
    if reference.shape != live.shape:
        raise ValueError(f"the live frame is {live.shape[1]}x{live.shape[0]}, the reference "
                         f"{reference.shape[1]}x{reference.shape[0]}")  # fmt: skip
    check_live_frame(live)
    height, width = reference.shape[:2]
    then_grey, now_grey = grey(reference), grey(live)
    warp = _motion(normalised(then_grey), normalised(now_grey))
    # The overlap of both views, less a margin the warp smears.
    inside = _onto_reference(np.ones((height, width), np.float32), warp, cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0.5
    # Colours at half the resolution, on both sides: a recording's video keeps colour at a quarter of its pixels
    # (4:2:0), so sharp colour edges differ from a fresh frame's by more than any threshold without this.
    then = _colour_detail(reference.reshape(height, width, -1).astype(np.float32))
    now = _colour_detail(_onto_reference(live.astype(np.float32), warp).reshape(height, width, -1))
    distance = np.zeros((height, width), np.float32)
    for channel in range(then.shape[2]):
        a, b = now[:, :, channel][inside], then[:, :, channel][inside]
        gain, offset = np.polyfit(a, b, 1) if a.std() > 1 else (1.0, float(b.mean() - a.mean()))
        distance = np.maximum(distance, np.abs(gain * now[:, :, channel] + offset - then[:, :, channel]))
    changed = (distance > CHANGED_LEVEL) & inside
    # Isolated pixels along sharp edges are resampling, not a change in the scene.
    changed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0
    a, b = then_grey[inside], _onto_reference(now_grey, warp)[inside]
    similarity = float(np.corrcoef(a, b)[0, 1]) if a.size > 10 and a.std() > 0 and b.std() > 0 else 0.0
    centre = np.array([width / 2, height / 2, 1.0])
    moved = warp @ centre - centre[:2]
    difference = SceneDifference(
        shift_px=float(np.hypot(*moved)),
        shift_x_px=float(moved[0]),
        shift_y_px=float(moved[1]),
        rotation_deg=math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0]))),
        similarity=similarity,
        changed_fraction=float(changed.sum() / max(inside.sum(), 1)),
        width=width,
        height=height,
    )
    return difference, changed
