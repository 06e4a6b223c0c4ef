"""Schemas of the policy, train, eval and pipeline groups, and of a sweep."""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from runner.schema.fields import (
    CheckMode,
    ChunkAggregate,
    Device,
    Inference,
    Launcher,
    LinkLost,
    MixedPrecision,
    WandbMode,
    bounded,
)

# --- policy ------------------------------------------------------------------------------------------


@dataclass
class ACTPolicyConfig:
    type: str = "act"
    # Fine-tune from a LeRobot policy folder or a Hub model repo (hf:OWNER/NAME[@REVISION]); None: from scratch.
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
    # Role -> the pretrained model's camera name: fine-tune a policy trained with other camera keys
    # (observation.images.<role> is fed as observation.images.<name>; LeRobot's rename_map). Checked before
    # training against pretrained_path's inputs; kept with the checkpoint, so eval applies it too.
    camera_names: dict[str, str] = field(default_factory=dict)


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
    # Role -> the pretrained model's camera name: fine-tune a policy trained with other camera keys
    # (observation.images.<role> is fed as observation.images.<name>; LeRobot's rename_map). Checked before
    # training against pretrained_path's inputs; kept with the checkpoint, so eval applies it too.
    camera_names: dict[str, str] = field(default_factory=dict)


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
    # Fine-tune pretrained_path with LoRA adapters of this rank (LeRobot's PEFT): the base weights stay frozen,
    # the adapters and LeRobot's default modules train. null: fine-tune every trainable weight.
    lora_rank: int | None = bounded(None, ge=1)
    # Role -> the pretrained model's camera name: fine-tune a policy trained with other camera keys
    # (observation.images.<role> is fed as observation.images.<name>; LeRobot's rename_map). Checked before
    # training against pretrained_path's inputs; kept with the checkpoint, so eval applies it too.
    camera_names: dict[str, str] = field(default_factory=dict)


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
    # Validation loss: LeRobot holds out the last ceil(n x val_split) episodes of each task (its
    # dataset.eval_split) and computes their loss every val_every steps (its eval_steps); null: at every
    # checkpoint. Written to metrics.csv, loss.png, each checkpoint in run.json and `runner compare`.
    val_split: float = bounded(0.0, ge=0, le=0.9)
    val_every: int | None = bounded(None, ge=1)
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
    # Push every kept checkpoint to the Hub model repo hub_repo_id when training ends, one tag step-NNNNNN each
    # (`runner push RUN --checkpoint ...` pushes some later). The token is checked before training starts.
    push_to_hub: bool = False
    hub_repo_id: str | None = None
    private: bool = False


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
    # Evaluate any LeRobot pretrained policy folder instead of a train run (e.g. a base model), or a Hub model
    # repo: hf:OWNER/NAME or hf:OWNER/NAME@REVISION (a tag such as step-002000, a branch or a commit).
    policy_path: str | None = None
    device: Device = Device.auto
    # Cameras (roles, sizes) or fps that differ from the training dataset's: refuse to run, or (warn) run
    # anyway with the differences logged in run.log and run.json.
    camera_check: CheckMode = CheckMode.error
    # Real robot: the seed of the blinded trial order; null draws one (recorded in run.json to audit it).
    order_seed: int | None = None
    # Where the policy runs: here (local), or on a `runner serve` server at eval.server=HOST:PORT (remote),
    # verified with its certificate (eval.server_cert: the serve run's serve/server.crt) when it uses TLS, and
    # the token from $RUNNER_SERVE_TOKEN when it asks for one.
    inference: Inference = Inference.local
    server: str | None = None
    server_cert: str | None = None
    # Remote: LeRobot's RobotClient chunking. Actions per chunk; the fraction of a chunk left in the queue at
    # which the next observation is sent; how a new chunk merges with the queued actions of the same steps.
    actions_per_chunk: int = bounded(50, ge=1)
    chunk_size_threshold: float = bounded(0.5, ge=0, le=1)
    aggregate: ChunkAggregate = ChunkAggregate.weighted_average
    # Remote: no fresh action for this long ends the episode as aborted (the server died or the link dropped);
    # the arm then holds its last position (hold) or goes limp (release: torque off); the server is waited for
    # this long (reconnect_s), and the aborted episode runs again when it answers.
    stale_action_s: float = bounded(2.0, gt=0)
    on_link_lost: LinkLost = LinkLost.hold
    reconnect_s: float = bounded(60.0, ge=0)
    # rtc: LeRobot's RTCConfig (how many actions of the last chunk guide the next, and how strongly) and its
    # RTCInferenceConfig.queue_threshold (a new chunk is computed once the queue holds this many or fewer).
    rtc_execution_horizon: int = bounded(10, ge=1)
    rtc_max_guidance_weight: float = bounded(10.0, gt=0)
    rtc_queue_threshold: int = bounded(30, ge=0)


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
