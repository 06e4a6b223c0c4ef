"""Dataclass schemas for every config group: the single source of truth for each key.

Each YAML option in ``conf/<group>/`` starts with ``defaults: [/schema/<group>/<name>@_here_]``, so
OmegaConf checks its keys and types against one of these classes at composition time: a misspelt key,
a wrong type or a value outside an enum fails before any stage runs, naming the key.

Robots, teleoperators, cameras and policies mirror the fields of LeRobot's own config dataclasses so that
the stages can hand them to ``draccus.decode`` unchanged; only runner-level keys (roles, operator
behaviour, schedules) are added here.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf


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


# --- robot -------------------------------------------------------------------------------------------


@dataclass
class SimRobotConfig:
    """The simulated SO-101 arm (MuJoCo); same joints and feature names as LeRobot's so101_follower."""

    type: str = "sim_so101"
    id: str = "sim_so101"
    max_relative_target: float | None = bounded(None, gt=0)
    render: RenderQuality = RenderQuality.fast


@dataclass
class SOFollowerConfig:
    """A real SO-100/SO-101 follower arm (LeRobot ``so100_follower`` / ``so101_follower``).

    The serial port comes from the host profile by ``role``; ``port`` overrides it for one run.
    """

    type: str = MISSING
    id: str = MISSING
    role: str = "follower"
    port: str | None = None
    # Degrees of joint motion allowed per control step: LeRobot leaves it unlimited, we do not.
    max_relative_target: float | None = bounded(10.0, gt=0)
    disable_torque_on_disconnect: bool = True
    use_degrees: bool = True
    calibration_dir: str | None = None


# --- teleop ------------------------------------------------------------------------------------------


@dataclass
class ScriptedTeleopConfig:
    """A scripted operator that solves the sim task; stands in for the human in simulation."""

    type: str = "sim_scripted"
    id: str = "scripted"
    operator: str = "scripted"
    speed: float = bounded(1.0, gt=0)
    noise: float = bounded(0.0, ge=0)
    failure_rate: float = bounded(0.0, ge=0, le=1)
    # Fractional speed-up per recorded episode (0 = a steady operator).
    learning_rate: float = bounded(0.0, ge=0)


@dataclass
class SOLeaderConfig:
    """A real SO-100/SO-101 leader arm (LeRobot ``so100_leader`` / ``so101_leader``)."""

    type: str = MISSING
    id: str = MISSING
    role: str = "leader"
    port: str | None = None
    operator: str = "human"
    use_degrees: bool = True
    calibration_dir: str | None = None


@dataclass
class NoTeleopConfig:
    """No teleoperator: the policy or nothing drives the robot."""

    type: str = "none"


# --- cameras -----------------------------------------------------------------------------------------


@dataclass
class CameraConfig:
    """One camera, named by its role (wrist, side, top, ...) in the ``cameras`` group.

    The device (index or stable path) is machine-specific and lives in the host profile by role.
    """

    type: CameraType = CameraType.opencv
    width: int = bounded(640, ge=1)
    height: int = bounded(480, ge=1)
    fps: int = bounded(30, ge=1)
    fourcc: str | None = None
    color_mode: ColorMode = ColorMode.rgb
    rotation: int = 0


# --- host --------------------------------------------------------------------------------------------


@dataclass
class ClusterConfig:
    """Where ``hydra/launcher=slurm`` submits (sbatch parameters, through Hydra's submitit launcher).

    Kept in the host profile so that an experiment never names a partition or an account.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    # Per job (one job = one run): GPUs on its node, CPUs for its task, memory in GB.
    gpus_per_node: int | None = bounded(None, ge=0)
    cpus_per_task: int | None = bounded(None, ge=1)
    mem_gb: int | None = bounded(None, ge=1)
    # The wall-time limit of one job (sbatch --time), in minutes.
    timeout_min: int = bounded(60, ge=1)
    # At most this many jobs of one sweep (one SLURM array) run at once.
    array_parallelism: int = bounded(16, ge=1)
    constraint: str | None = None
    # Shell lines the job runs before runner (module load, source .venv/bin/activate, ...).
    setup: list[str] = field(default_factory=list)
    # Any other sbatch option, by its long name without dashes, e.g. {mail-type: END}.
    additional_parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class HostConfig:
    """This machine's devices, kept out of experiments: role -> stable port or camera path; and its cluster."""

    name: str = "none"
    ports: dict[str, str] = field(default_factory=dict)
    cameras: dict[str, str] = field(default_factory=dict)
    calibration_dir: str | None = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


# --- task --------------------------------------------------------------------------------------------


@dataclass
class ScenarioConfig:
    """One scenario of the task: its own instruction, episode count, and what varies in simulation."""

    name: str = MISSING
    instruction: str = MISSING
    num_episodes: int = bounded(10, ge=1)
    # Where the object starts: [x_min, y_min, x_max, y_max] in metres (robot base frame); None = default.
    object_region: list[float] | None = None
    # A fixed target [x, y]; None samples one per episode.
    target_position: list[float] | None = None
    distractors: int = bounded(0, ge=0)
    # Relative light-intensity jitter and camera-position jitter (metres) per episode.
    lighting_jitter: float = bounded(0.0, ge=0)
    camera_jitter: float = bounded(0.0, ge=0)
    # Real robot: where the operator sets the scene up before each episode ("ball on mark B, 10 cm left"),
    # used in turn by the scenario's episodes and shown on screen before each evaluation episode.
    start_positions: list[str] = field(default_factory=list)


@dataclass
class TaskConfig:
    name: str = MISSING
    instruction: str = MISSING
    scenarios: list[ScenarioConfig] = field(default_factory=list)
    # Free-text notes saved with each run: camera placement, whether the target is fixed, ...
    setup_notes: list[str] = field(default_factory=list)


# --- episode -----------------------------------------------------------------------------------------


@dataclass
class EarlyStopConfig:
    keys: bool = True
    # End the episode after this long without operator motion (None: never).
    idle_s: float | None = bounded(None, gt=0)
    # Operator motion below this many degrees per frame counts as idle.
    idle_threshold_deg: float = bounded(0.2, gt=0)
    # Simulation: end the episode once the task succeeds, after_success_s later. The frames after success
    # show the gripper letting go and the arm retreating: a policy cannot learn a release it never sees.
    on_success: bool = True
    after_success_s: float = bounded(1.0, ge=0)


class ValidationMode(StrEnum):
    discard = "discard"
    warn = "warn"


@dataclass
class EpisodeConfig:
    # The control loop's rate (record, teleoperate). The bound refuses only what no SO-101 set-up can do (a
    # typo such as 5000): one sync read plus one sync write of six STS3215 servos over the 1 Mbaud bus and
    # its USB adapter take at least about 1 ms, and the fastest USB cameras give a few hundred fps at small
    # sizes. 200 would refuse those, and teleoperate's uncapped loop (episode.fps=1000, as LeRobot's
    # teleop_loop and benchmarks/bench_hardware.py run it). What one set-up keeps up with is measured while
    # recording instead: a realtime loop below 80 % of fps for 2 s stops the recording (see record.py).
    fps: int = bounded(30, ge=1, le=1000)
    # A cap, not a fixed length: episodes end early by key, idle detection or success.
    episode_time_s: float = bounded(60.0, gt=0)
    reset_time_s: float = bounded(10.0, ge=0)
    # None: the sum of the task's scenario episode counts.
    num_episodes: int | None = bounded(None, ge=1)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    realtime: bool = True
    # Simulated start states: episode i of a run uses seed + i.
    seed: int = 0
    # An episode failing a check is discarded, or kept with a warning.
    validation: ValidationMode = ValidationMode.discard
    min_frames: int = bounded(5, ge=1)
    # A frame may arrive this many periods late before it counts as a timestamp gap.
    timestamp_tolerance: float = bounded(0.5, gt=0)
    # Identical consecutive images while the arm moves: more than this many and the camera is frozen.
    max_frozen_frames: int = bounded(3, ge=1)


# --- dataset -----------------------------------------------------------------------------------------


@dataclass
class DatasetConfig:
    repo_id: str = "local/runner"
    video: bool = True
    # The cameras' video codec. h264 by measurement (benchmarks/bench_codec.py, 2 CPU cores): encoded while
    # recording, a frame costs 0.4-0.5x of LeRobot's default (libsvtav1) after rendering at 128x96 and 0.2-0.4x
    # at 640x480 (AV1: 0.5-0.7x), files are 35-45% smaller at LeRobot's settings (crf 30, a keyframe every 2
    # frames; PSNR 1 dB lower), and training decodes it (LeRobotDataset, pyav) as fast as AV1 at real cameras'
    # 640x480 (0.9-1.2x). At sim_demo's 128x96 it decodes at 0.65-0.8x of AV1: libsvtav1 suits long trainings
    # on small images. hevc is slower to encode and to decode.
    # Every decoder has h264 (browsers, the Hub's viewer, NVDEC). A resumed dataset keeps the codec it has.
    vcodec: VideoCodec = VideoCodec.h264
    # Encode while recording (LeRobot's thread per camera) instead of staging PNGs and encoding after each
    # episode: 0.3-0.7x of the time per frame after rendering, and almost no wait after an episode (on 2 cores,
    # two 640x480 cameras wait about a minute after a 60 s episode otherwise). Crash-safe as before: a kill
    # mid-episode leaves an unfinished video that resume= removes. An episode whose encoder fell behind and
    # dropped a frame is refused (LeRobot would keep a video shorter than its data).
    streaming_encoding: bool = True
    push_to_hub: bool = False
    private: bool = True


# --- policy ------------------------------------------------------------------------------------------


@dataclass
class ACTPolicyConfig:
    type: str = "act"
    pretrained_path: str | None = None
    chunk_size: int = bounded(100, ge=1)
    n_action_steps: int = bounded(100, ge=1)
    dim_model: int = bounded(512, ge=1)
    dim_feedforward: int = bounded(3200, ge=1)
    n_encoder_layers: int = bounded(4, ge=1)
    n_decoder_layers: int = bounded(1, ge=1)
    n_vae_encoder_layers: int = bounded(4, ge=1)
    use_vae: bool = True
    vision_backbone: str = "resnet18"
    # None keeps training offline; a local torchvision weights name or path opts in.
    pretrained_backbone_weights: str | None = None


@dataclass
class DiffusionPolicyConfig:
    type: str = "diffusion"
    pretrained_path: str | None = None
    n_obs_steps: int = bounded(2, ge=1)
    horizon: int = bounded(16, ge=1)
    n_action_steps: int = bounded(8, ge=1)
    # LeRobot requires horizon - n_action_steps - n_obs_steps + 1.
    drop_n_last_frames: int = bounded(7, ge=0)
    down_dims: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = None
    num_train_timesteps: int = bounded(100, ge=1)


@dataclass
class SmolVLAPolicyConfig:
    type: str = "smolvla"
    pretrained_path: str | None = None
    # A local folder with the VLM weights and tokenizer: nothing is downloaded at run time.
    vlm_path: str = MISSING
    # Load the VLM's weights from vlm_path (False: its config only, randomly initialised).
    load_vlm_weights: bool = True
    chunk_size: int = bounded(50, ge=1)
    n_action_steps: int = bounded(50, ge=1)
    freeze_vision_encoder: bool = True
    train_expert_only: bool = True
    # Images are resized (with padding) to the VLM's input size.
    resize_imgs_with_padding: list[int] = field(default_factory=lambda: [512, 512])
    tokenizer_max_length: int = bounded(48, ge=1)
    max_state_dim: int = bounded(32, ge=1)
    max_action_dim: int = bounded(32, ge=1)
    scheduler_warmup_steps: int = bounded(1000, ge=0)
    scheduler_decay_steps: int = bounded(30000, ge=1)


# --- train / eval ------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    steps: int = bounded(10_000, ge=1)
    save_freq: int = bounded(2_000, ge=1)
    # An explicit checkpoint schedule; when set it replaces save_freq.
    save_steps: list[int] | None = None
    batch_size: int = bounded(8, ge=1)
    lr: float | None = bounded(None, gt=0)
    seed: int = 1000
    device: Device = Device.auto
    num_workers: int = bounded(2, ge=0)
    log_freq: int = bounded(100, ge=1)
    # Keep the last K checkpoints plus every step in keep_steps (the eval schedule); None keeps all.
    keep_checkpoints: int | None = bounded(None, ge=1)
    keep_steps: list[int] = field(default_factory=list)
    wandb: WandbMode = WandbMode.off
    # Data-parallel training under `accelerate launch`: one process per GPU (on a machine without GPUs,
    # that many CPU processes, gloo backend). Checkpoints and metrics come from the main process only.
    num_processes: int = bounded(1, ge=1)
    mixed_precision: MixedPrecision = MixedPrecision.no
    # Train on a subset of the recorded episodes: by scenario name, by success label, by dataset index.
    scenarios: list[str] | None = None
    only_successful: bool = False
    episodes: list[int] | None = None


@dataclass
class EvalConfig:
    n_episodes: int = bounded(10, ge=1)
    # The matched start states (and, through the task's scenarios, instructions): every checkpoint in a
    # comparison sees exactly these. null: 10000, 10001, ... (held out from recording's episode.seed + i).
    seeds: list[int] | None = None
    # A step number, "last", "all", or a list of steps. In simulation several checkpoints become one sweep
    # job each; on a real robot they are one blinded session (episodes of all checkpoints interleaved).
    checkpoint: Any = "last"
    # Episodes stepped together in one batched rollout (one vector env, one policy call per step).
    batch_size: int = bounded(1, ge=1)
    # The first N episodes are saved as videos, camera views side by side.
    videos: int = bounded(2, ge=0)
    # Keep every rollout as a LeRobot dataset under eval/rollouts.
    save_rollouts: bool = False
    # Evaluate any LeRobot pretrained policy folder instead of a train run (e.g. a base model).
    policy_path: str | None = None
    device: Device = Device.auto
    # Cameras (roles, sizes) or fps that differ from the training dataset's: refuse to run, or (warn) run
    # anyway with the differences logged in run.log and run.json.
    camera_check: CheckMode = CheckMode.error
    # Real robot: the seed of the blinded trial order; null draws one (recorded in run.json to audit it).
    order_seed: int | None = None


@dataclass
class SweepConfig:
    # Re-run only the jobs of this earlier sweep (an id or prefix) that did not succeed, in its directory.
    resume: str | None = None


@dataclass
class PipelineConfig:
    # Use this record run instead of recording (an id, a prefix or latest).
    dataset_run: str | None = None
    # Use this train run instead of training; implies no recording.
    policy_run: str | None = None
    # How the eval sweep runs its jobs: joblib (in parallel, one per core) or basic (one after another).
    launcher: Launcher = Launcher.joblib


# --- paths and root ----------------------------------------------------------------------------------


@dataclass
class PathsConfig:
    # RUNNER_OUTPUTS, else <repo>/outputs; see runner.core.outputs.default_outputs_root.
    outputs: str = "${runner_outputs:}"


@dataclass
class RunnerConfig:
    """The root: one field per group. Polymorphic groups (robot, teleop, policy) are typed by option."""

    robot: Any = MISSING
    teleop: Any = MISSING
    # Cameras by role; roles are open-ended: a conf/cameras/<option>.yaml may name any roles it needs.
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    host: HostConfig = field(default_factory=HostConfig)
    task: TaskConfig = MISSING
    episode: EpisodeConfig = MISSING
    dataset: DatasetConfig = MISSING
    policy: Any = MISSING
    train: TrainConfig = MISSING
    eval: EvalConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Continue an earlier run of the same stage (an id, a prefix or latest) in its own directory.
    resume: str | None = None
    # The record run(s) a train run learns from: an id, a prefix, latest, or a list of them.
    dataset_run: Any = "latest"
    # The train run an eval run evaluates: an id, a prefix or latest (ignored with eval.policy_path).
    policy_run: str = "latest"
    # teleoperate: stop after this many seconds (null: when you press q or Ctrl-C).
    duration_s: float | None = bounded(None, gt=0)
    # teleoperate: a live view of the cameras and joints in Rerun (needs rerun-sdk: LeRobot's viz extra).
    display: bool = False
    sweep: SweepConfig = field(default_factory=SweepConfig)
    pipeline: PipelineConfig = MISSING


# Groups whose options have different fields pick their schema per option; the other groups are typed by
# their field in RunnerConfig.
OPTION_SCHEMAS: dict[str, dict[str, type]] = {
    "robot": {"sim": SimRobotConfig, "so_follower": SOFollowerConfig},
    "teleop": {"scripted": ScriptedTeleopConfig, "so_leader": SOLeaderConfig, "none": NoTeleopConfig},
    "policy": {"act": ACTPolicyConfig, "diffusion": DiffusionPolicyConfig, "smolvla": SmolVLAPolicyConfig},
}


def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore under ``schema/<group>/<name>`` (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="runner_schema", node=RunnerConfig)
    for group, options in OPTION_SCHEMAS.items():
        for name, node in options.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def check_bounds(node: DictConfig | ListConfig, path: str = "") -> None:
    """Raise a ConfigError for the first value outside its schema field's bounds (see ``bounded``)."""
    from runner.core.errors import ConfigError

    if isinstance(node, ListConfig):
        for index, item in enumerate(node):
            if isinstance(item, DictConfig | ListConfig):
                check_bounds(item, f"{path}[{index}]")
        return
    schema = OmegaConf.get_type(node)
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    for key in node:
        full = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        try:
            value = node[key]
        except Exception:  # an interpolation in a section this stage does not read (checked where it is read)
            continue
        if isinstance(value, DictConfig | ListConfig):
            check_bounds(value, full)
            continue
        bounds = fields[key].metadata.get("bounds") if key in fields else None
        if bounds is None or value is None or isinstance(value, bool):
            continue
        if not math.isfinite(value):  # inf passes a lower bound, and nan fails every bound confusingly
            wanted = " and ".join(f"{r} {v:g}" for r, v in bounds.items() if v is not None)
            raise ConfigError(full, f"is {value}, not a finite number", f"use a finite value {wanted}")
        for relation, limit in bounds.items():
            if limit is None:
                continue
            holds = {">=": value >= limit, ">": value > limit, "<=": value <= limit}[relation]
            if not holds:
                wanted = " and ".join(f"{r} {v:g}" for r, v in bounds.items() if v is not None)
                raise ConfigError(full, f"is {value:g}, outside its range ({wanted})", f"use a value {wanted}")
