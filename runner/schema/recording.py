"""Schemas of the task, episode and dataset groups: what is recorded, for how long, and how it is stored."""

from dataclasses import dataclass, field

from omegaconf import MISSING

from runner.schema.fields import ValidationMode, VideoCodec, bounded

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


@dataclass
class EpisodeConfig:
    # The control loop's rate (record, teleoperate). The bound refuses only what no SO-101 set-up can do (a
    # typo such as 5000): one sync read plus one sync write of six STS3215 servos over the 1 Mbaud bus and
    # its USB adapter take at least about 1 ms, and the fastest USB cameras give a few hundred fps at small
    # sizes. 200 would refuse those, and teleoperate's uncapped loop (episode.fps=1000, as LeRobot's
    # teleop_loop and benchmarks/bench_hardware.py run it). What one set-up keeps up with is measured while
    # recording instead: a realtime loop below 80 % of fps for 2 s stops the recording (see stages/record/failures.py).
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
    # Push the dataset to the Hub when the recording ends with kept episodes (LeRobot's push_to_hub: the card and
    # the codebase-version tag its loader needs). The token (HF_TOKEN or `hf auth login`) is checked before
    # recording starts. A failed push leaves the run intact: `runner push RUN` finishes it.
    push_to_hub: bool = False
    # The Hub repo (OWNER/NAME); None: repo_id.
    hub_repo_id: str | None = None
    # Create the Hub repo private.
    private: bool = False
