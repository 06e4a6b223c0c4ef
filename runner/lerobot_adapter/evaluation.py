"""Policy evaluation through LeRobot's own code: policy factory, processors and batched ``rollout``.

A policy folder (a checkpoint's ``pretrained_model`` or any LeRobot pretrained policy) is loaded with
LeRobot's factory and its saved pre/post-processors; episodes run in a Gymnasium vector env through
``lerobot_eval.rollout``, each sub-env wrapped in LeRobot's ``FreezeAfterEpisodeEnd`` so that a finished
episode costs nothing while the rest of its batch goes on. Rollouts can be recorded with the recorder that
``rollout`` itself offers, then merged into one LeRobot dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs.utils import FreezeAfterEpisodeEnd
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.processor import PolicyProcessorPipeline
from lerobot.scripts import lerobot_eval
from lerobot.utils.io_utils import write_video

from runner.lerobot_adapter.checkpoints import IMAGES, PRETRAINED_CONFIG
from runner.lerobot_adapter.datasets import merge
from runner.lerobot_adapter.remote_policy import RemoteLost, RemotePolicy

log = logging.getLogger("runner.eval")

ROLLOUT_PARTS = "parts"


PREPROCESSOR = "policy_preprocessor.json"


def policy_type_and_inputs(folder: Path) -> tuple[str, dict[str, list[int]]]:
    """A policy folder's type and input features (name -> shape), read from its config without loading it.

    Names are those the policy is fed: a policy fine-tuned with ``policy.camera_names`` reads
    ``observation.images.<name>``, which its saved preprocessor renames from the robot's role."""
    config = json.loads((folder / PRETRAINED_CONFIG).read_text())
    fed_as = {model: fed for fed, model in renamed_inputs(folder).items()}
    features = config.get("input_features", {})
    inputs = {fed_as.get(name, name): list(feature["shape"]) for name, feature in features.items()}
    return config["type"], inputs


def renamed_inputs(folder: Path) -> dict[str, str]:
    """The rename map a policy folder's preprocessor applies (LeRobot's rename_observations_processor)."""
    path = folder / PREPROCESSOR
    if not path.exists():
        return {}
    steps = json.loads(path.read_text()).get("steps", [])
    renames = [s.get("config", {}).get("rename_map") or {} for s in steps
               if s.get("registry_name") == "rename_observations_processor"]  # fmt: skip
    return renames[0] if renames else {}


@dataclass
class LoadedPolicy:
    policy: Any
    preprocessor: Any
    postprocessor: Any
    folder: Path


def load_policy(folder: Path, device: str) -> LoadedPolicy:
    """A pretrained policy and its processors, on ``device``, in eval mode."""
    config = PreTrainedConfig.from_pretrained(folder)
    config.device = device
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # LeRobot prints "Loading weights from ..." to stdout
        policy = get_policy_class(config.type).from_pretrained(folder, config=config)
    if printed.getvalue().strip():
        logging.getLogger("lerobot").info(printed.getvalue().strip())
    policy.eval()
    preprocessor, postprocessor = make_pre_post_processors(
        config, pretrained_path=str(folder), preprocessor_overrides={"device_processor": {"device": device}}
    )
    return LoadedPolicy(policy, preprocessor, postprocessor, folder)


def remote_policy(
    folder: Path, settings: Any, cameras: dict[str, tuple[int, int]], joints: list[str], token: str | None
):
    """The policy of ``folder`` as served by a ``runner serve`` server (``settings``: the eval config), connected
    and its handshake passed; LeRobot's rollout drives it with identity processors (the server applies the
    policy's own)."""
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    policy_type, _ = policy_type_and_inputs(folder)
    features = {"observation.state": {"dtype": "float32", "shape": (len(joints),), "names": joints}}
    for role, (width, height) in cameras.items():
        features[f"{IMAGES}{role}"] = {"dtype": "image", "shape": (height, width, 3), "names": None}
    action_dim = json.loads((folder / PRETRAINED_CONFIG).read_text())["output_features"]["action"]["shape"][0]
    certificate = Path(settings.server_cert).expanduser().read_bytes() if settings.server_cert else None
    remote = RemotePolicy(
        settings.server, policy_type, features, action_dim, settings.actions_per_chunk,
        settings.chunk_size_threshold, settings.aggregate.value, settings.stale_action_s, certificate, token,
        weights_sha256(folder),
    )  # fmt: skip
    remote.connect()
    postprocessor = PolicyProcessorPipeline(
        steps=[], to_transition=policy_action_to_transition, to_output=transition_to_policy_action
    )
    return LoadedPolicy(remote, PolicyProcessorPipeline(steps=[]), postprocessor, folder)


def weights_sha256(folder: Path) -> str:
    """The sha256 of a policy folder's weights file: which bytes were evaluated."""
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def set_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


@dataclass
class EpisodeOutcome:
    seed: int
    success: bool
    steps: int
    sum_reward: float
    wall_s: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


def _env_features(env: gym.Env) -> dict[str, PolicyFeature]:
    """What LeRobot's rollout recorder stores: camera images, joint state, action."""
    space = env.observation_space
    features = {
        f"{IMAGES}{role}": PolicyFeature(FeatureType.VISUAL, box.shape) for role, box in space["pixels"].spaces.items()
    }
    features["agent_pos"] = PolicyFeature(FeatureType.STATE, space["agent_pos"].shape)
    features["action"] = PolicyFeature(FeatureType.ACTION, env.action_space.shape)
    return features


def rollout(
    loaded: LoadedPolicy,
    make_env: Callable[[], gym.Env],
    seeds: Sequence[int],
    batch_size: int,
    videos: int,
    rollouts_dir: Path | None,
    on_episode: Callable[[int, EpisodeOutcome], None],
    on_lost: Callable[[int, RemoteLost], LoadedPolicy] | None = None,
) -> list[EpisodeOutcome]:
    """Run one episode per seed, ``batch_size`` at a time; the first ``videos`` episodes keep their frames.

    ``on_episode(index, outcome)`` is called as each batch finishes. With ``rollouts_dir``, every episode is
    recorded by LeRobot's rollout recorder and the parts are merged into one dataset at ``rollouts_dir``.
    A remote policy whose server is lost mid-batch: ``on_lost(index of the batch's first episode, error)``
    gives the policy to run the batch again with (or raises), and the lost batch is thrown away.
    """
    batch_size = max(1, min(batch_size, len(seeds)))
    vector_env = gym.vector.SyncVectorEnv([lambda: FreezeAfterEpisodeEnd(make_env()) for _ in range(batch_size)])
    identity = PolicyProcessorPipeline(steps=[]), PolicyProcessorPipeline(steps=[])
    features = _env_features(vector_env.envs[0].unwrapped)
    outcomes: list[EpisodeOutcome] = []
    parts: list[Path] = []
    progress_bar = lerobot_eval.trange
    # runner logs each episode; LeRobot's per-step bar would fill run.log with carriage returns.
    lerobot_eval.trange = lambda *args, **kwargs: progress_bar(*args, **{**kwargs, "disable": True})
    try:
        for start in range(0, len(seeds), batch_size):
            batch = list(seeds[start : start + batch_size])
            real = len(batch)
            batch += [batch[-1]] * (batch_size - real)  # a short last batch repeats its last seed; ignored below
            keep_frames = max(0, min(videos - start, real))
            frames: list[np.ndarray] = []

            def collect(env: gym.vector.VectorEnv, keep: int = keep_frames, into: list = frames) -> None:
                if keep:
                    into.append(np.stack(env.call("render")[:keep]))

            part = None
            if rollouts_dir is not None:
                part = rollouts_dir / ROLLOUT_PARTS / f"{start:06d}"
                part.parent.mkdir(parents=True, exist_ok=True)
            while True:
                started = time.perf_counter()
                try:
                    result = lerobot_eval.rollout(
                        vector_env, loaded.policy, *identity, loaded.preprocessor, loaded.postprocessor,
                        seeds=batch, render_callback=collect, recording_dir=part,
                        env_features=features if part is not None else None,
                    )  # fmt: skip
                    break
                except RemoteLost as lost:
                    if on_lost is None:
                        raise
                    frames.clear()
                    if part is not None:
                        shutil.rmtree(part, ignore_errors=True)
                    loaded = on_lost(start, lost)
            wall = (time.perf_counter() - started) / real
            done = result["done"].numpy()
            for slot in range(real):
                steps = int(np.argmax(done[slot])) + 1 if done[slot].any() else done.shape[1]
                outcome = EpisodeOutcome(
                    seed=batch[slot],
                    success=bool(result["success"][slot, :steps].any()),
                    steps=steps,
                    sum_reward=float(result["reward"][slot, :steps].sum()),
                    wall_s=wall,
                    # Frames: the reset observation, then one per step, up to the episode's end.
                    frames=[f[slot] for f in frames[: steps + 1]] if slot < keep_frames else [],
                )
                outcomes.append(outcome)
                on_episode(start + slot, outcome)
            if part is not None:
                parts += [part] if batch_size == 1 else [part / f"env_{slot}" for slot in range(real)]
    finally:
        lerobot_eval.trange = progress_bar
        vector_env.close()
    if rollouts_dir is not None and parts:
        _merge_parts(parts, rollouts_dir)
    return outcomes


def _merge_parts(parts: list[Path], target: Path) -> None:
    merged = target.with_name(target.name + ".merging")
    if len(parts) == 1:
        shutil.copytree(parts[0], merged)
    else:
        merge(parts, merged, "local/eval_rollouts")
    shutil.rmtree(target)
    merged.rename(target)


def write_episode_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """An MP4 (H.264, via LeRobot's writer) of an episode's side-by-side camera frames."""
    temporary = path.with_name(f".{path.name}")
    write_video(temporary, frames, fps)
    temporary.replace(path)
