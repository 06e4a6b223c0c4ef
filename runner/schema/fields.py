"""What the group schemas are made of: bounded numeric fields and the enums of allowed values."""

from dataclasses import field
from enum import StrEnum
from typing import Any


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A numeric field with the range its value must lie in (None is always allowed where the type is
    Optional); checked for every key of the sections a stage reads, before its run starts. The value must
    also be finite: inf and nan are refused, null is how an Optional field says "no limit"."""
    return field(default=default, metadata={"bounds": {">=": ge, ">": gt, "<=": le}})


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class WandbMode(StrEnum):
    off = "off"
    offline = "offline"
    online = "online"


class CheckMode(StrEnum):
    warn = "warn"
    error = "error"


class Inference(StrEnum):
    local = "local"  # the policy runs in this process
    remote = "remote"  # on a `runner serve` server (LeRobot's async inference)
    # here, with LeRobot's real-time chunking engine: chunks computed in a thread while the arm moves, each
    # guided by the actions left of the last (flow-matching policies: SmolVLA, pi0); on a real robot only
    rtc = "rtc"


class LinkLost(StrEnum):
    """What a real arm does when its policy server stops answering mid-episode."""

    hold = "hold"  # torque stays on: the arm holds its last commanded position
    release = "release"  # torque off, as for a lost device


class ChunkAggregate(StrEnum):
    """LeRobot's async-inference aggregate functions (lerobot.async_inference.configs.AGGREGATE_FUNCTIONS)."""

    weighted_average = "weighted_average"
    latest_only = "latest_only"
    average = "average"
    conservative = "conservative"


class SceneCheckMode(StrEnum):
    """What a scene that changed since the recording does to a session: refuse to start it, warn, or nothing."""

    refuse = "refuse"
    warn = "warn"
    off = "off"


class Launcher(StrEnum):
    """Hydra launchers a pipeline's eval sweep may use (the names of conf/hydra/launcher options)."""

    joblib = "joblib"
    basic = "basic"
    submitit_local = "submitit_local"
    slurm = "slurm"


class MixedPrecision(StrEnum):
    """accelerate's --mixed_precision."""

    no = "no"
    fp16 = "fp16"
    bf16 = "bf16"


class CameraType(StrEnum):
    sim = "sim"
    opencv = "opencv"
    realsense = "realsense"


class RenderQuality(StrEnum):
    """How the simulated world is drawn: fast (low-polygon arm, box floor; the default) or full (the
    original meshes). The physics is the same; the images are not, so eval checks it against the recording."""

    fast = "fast"
    full = "full"


class VideoCodec(StrEnum):
    """The cameras' video codec, as LeRobot names its encoders (its libaom-av1 is left out: libsvtav1 encodes
    AV1 many times faster). auto picks a hardware encoder when one is there."""

    h264 = "h264"
    hevc = "hevc"
    libsvtav1 = "libsvtav1"
    auto = "auto"
    h264_nvenc = "h264_nvenc"
    hevc_nvenc = "hevc_nvenc"
    h264_vaapi = "h264_vaapi"
    h264_qsv = "h264_qsv"
    h264_videotoolbox = "h264_videotoolbox"
    hevc_videotoolbox = "hevc_videotoolbox"


class ColorMode(StrEnum):
    rgb = "rgb"
    bgr = "bgr"


class ValidationMode(StrEnum):
    discard = "discard"
    warn = "warn"
