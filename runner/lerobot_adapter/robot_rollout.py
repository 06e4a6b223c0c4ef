"""Policy episodes on a real robot through LeRobot's own rollout engine (``lerobot.rollout``).

The pieces are those ``lerobot-rollout`` assembles: the robot-side default processors, the dataset features
derived from the robot, LeRobot's ``SyncInferenceEngine`` (pre-processor, ``select_action``,
post-processor) and ``send_next_action``, and the strategies' smooth return to the initial position. What
runner adds is an episode boundary the operator controls: one connected robot serves several policies in
turn (a blinded comparison), each episode ends on the operator's key or at its step cap, and the arm goes
back to where it started before the next one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from lerobot.datasets import aggregate_pipeline_dataset_features, create_initial_features
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.processor import make_default_processors
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.rollout.context import DatasetContext, HardwareContext, PolicyContext, ProcessorContext, RolloutContext
from lerobot.rollout.inference.base import InferenceEngine
from lerobot.rollout.inference.rtc import RTCInferenceEngine, supports_rtc_inference
from lerobot.rollout.inference.sync import SyncInferenceEngine
from lerobot.rollout.robot_wrapper import ThreadSafeRobot
from lerobot.rollout.strategies.core import RolloutStrategy, send_next_action
from lerobot.utils.action_interpolator import ActionInterpolator
from lerobot.utils.feature_utils import combine_feature_dicts, hw_to_dataset_features
from lerobot.utils.robot_utils import precise_sleep

from runner.lerobot_adapter.devices import release
from runner.lerobot_adapter.evaluation import LoadedPolicy

RETURN_S = 3.0  # LeRobot's own duration for the return to the initial position
# LeRobot logs every clamped step (max_relative_target) with a dump of the joints; runner counts them.
CLAMPED = "Relative goal position magnitude had to be clamped"
# The engine logs its start and reset at INFO for every episode.
logging.getLogger("lerobot.rollout").setLevel(logging.WARNING)


class _ClampCounter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(CLAMPED):
            self.count += 1
            return False
        return True


@contextlib.contextmanager
def counting_clamps() -> Iterator[_ClampCounter]:
    """While inside: LeRobot's per-step "had to be clamped" warnings are counted instead of printed."""
    counter = _ClampCounter()
    root = logging.getLogger()
    root.addFilter(counter)
    try:
        yield counter
    finally:
        root.removeFilter(counter)


@dataclass
class RobotEpisode:
    steps: int
    wall_s: float
    stopped: bool  # ended by stop_when (the operator), not by the step cap
    clamped: int = 0  # steps where max_relative_target limited the commanded motion
    underruns: int = 0  # control steps with no action to send (an asynchronous engine's queue was empty)
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class RealTimeChunking:
    """LeRobot's real-time chunking settings (RTCConfig and RTCInferenceConfig.queue_threshold)."""

    execution_horizon: int
    max_guidance_weight: float
    queue_threshold: int


def enable_rtc(loaded: LoadedPolicy, settings: RealTimeChunking) -> bool:
    """Make the policy guide each chunk by the last one's leftover actions, as ``lerobot-rollout
    --inference.type=rtc`` does; False when the policy cannot (not a flow-matching policy)."""
    policy = loaded.policy
    if not supports_rtc_inference(policy):
        return False
    policy.config.rtc_config = RTCConfig(
        execution_horizon=settings.execution_horizon, max_guidance_weight=settings.max_guidance_weight
    )
    if hasattr(policy, "init_rtc_processor"):
        policy.init_rtc_processor()
    return True


class RobotSession:
    """A connected robot and the features LeRobot's rollout derives from it, shared by every policy."""

    def __init__(self, config: RobotConfig, device: str) -> None:
        self.device = device
        self.robot = make_robot_from_config(config)
        teleop_processor, robot_processor, observation_processor = make_default_processors()
        self.processors = ProcessorContext(teleop_processor, robot_processor, observation_processor)
        # As in lerobot.rollout.context.build_rollout_context: joint positions and cameras reach the policy.
        observed = {
            k: v
            for k, v in self.robot.observation_features.items()
            if isinstance(v, tuple) or (v is float and k.endswith((".pos", ".vel")))
        }
        actions = {k: v for k, v in self.robot.action_features.items() if k.endswith((".pos", ".vel"))}
        self.features = combine_feature_dicts(
            aggregate_pipeline_dataset_features(
                teleop_processor, create_initial_features(action=actions), use_videos=True
            ),
            aggregate_pipeline_dataset_features(
                observation_processor, create_initial_features(observation=observed), use_videos=True
            ),
        )
        self.action_keys = list(actions)
        self.hw_features = hw_to_dataset_features(observed, "observation")
        self.cameras = [k for k, v in observed.items() if isinstance(v, tuple)]
        self.hardware: HardwareContext | None = None

    @property
    def connected(self) -> bool:
        return self.robot.is_connected

    def connect(self) -> None:
        self.robot.connect()
        start = self.robot.get_observation()
        initial = {k: v for k, v in start.items() if k.endswith(".pos")}
        self.hardware = HardwareContext(ThreadSafeRobot(self.robot), teleop=None, initial_position=initial)

    def return_to_start(self) -> None:
        """Back to the joint positions the arm had when the session connected (LeRobot's interpolation)."""
        if self.hardware is not None and self.robot.is_connected:
            with counting_clamps():
                RolloutStrategy._return_to_initial_position(self.hardware, duration_s=RETURN_S)

    @property
    def joints(self) -> list[str]:
        """The joint names of the state a policy sees, in LeRobot's order."""
        return list(self.features["observation.state"]["names"])

    def set_torque(self, on: bool) -> None:
        """Torque on every motor of the arm (off: it goes limp, as on a lost device; on: it holds again)."""
        bus = self.robot.bus
        (bus.enable_torque if on else bus.disable_torque)(num_retry=2)

    def run_episode(
        self,
        loaded: LoadedPolicy,
        instruction: str,
        fps: int,
        max_steps: int,
        stop_when: Callable[[], bool],
        keep_frames: bool = False,
        rtc: RealTimeChunking | None = None,
    ) -> RobotEpisode:
        """The policy drives the arm at ``fps`` until ``stop_when()`` or ``max_steps`` control steps: one policy
        call per step (LeRobot's synchronous engine), or with ``rtc`` chunks computed in LeRobot's real-time
        chunking thread while the arm moves (a step whose queue is empty sends nothing: an underrun)."""
        if self.hardware is None:
            raise RuntimeError("connect() the session first")
        engine = self._engine(loaded, instruction, fps, rtc)
        engine.reset()
        engine.start()
        engine.resume()
        context = RolloutContext(
            runtime=None,  # read only by LeRobot's strategies, not by send_next_action
            hardware=self.hardware,
            policy=PolicyContext(loaded.policy, loaded.preprocessor, loaded.postprocessor, engine),
            processors=self.processors,
            data=DatasetContext(None, self.features, {}, self._action_order(loaded)),
        )
        interpolator = ActionInterpolator(multiplier=1)
        episode = RobotEpisode(steps=0, wall_s=0.0, stopped=False)
        period = 1.0 / fps
        started = time.perf_counter()
        with counting_clamps() as clamps:
            try:
                while episode.steps < max_steps:
                    tick = time.perf_counter()
                    if stop_when():
                        episode.stopped = True
                        break
                    if engine.failed:
                        raise RuntimeError("LeRobot's real-time chunking thread stopped on an error (in run.log)")
                    observation = self.hardware.robot_wrapper.get_observation()
                    processed = self.processors.robot_observation_processor(observation)
                    engine.notify_observation(processed)
                    if send_next_action(processed, observation, context, interpolator) is None:
                        episode.underruns += 1
                    if keep_frames and self.cameras:
                        episode.frames.append(_side_by_side([observation[k] for k in self.cameras]))
                    episode.steps += 1
                    precise_sleep(max(0.0, period - (time.perf_counter() - tick)))
            finally:
                engine.stop()
        episode.wall_s = time.perf_counter() - started
        episode.clamped = clamps.count
        return episode

    def _engine(
        self, loaded: LoadedPolicy, instruction: str, fps: int, rtc: RealTimeChunking | None
    ) -> InferenceEngine:
        if rtc is None:
            return SyncInferenceEngine(
                loaded.policy, loaded.preprocessor, loaded.postprocessor, self.features, self._action_order(loaded),
                instruction, self.device, self.robot.name,
            )  # fmt: skip
        return RTCInferenceEngine(
            loaded.policy, loaded.preprocessor, loaded.postprocessor, self.hardware.robot_wrapper,
            loaded.policy.config.rtc_config, self.hw_features, instruction, fps, self.device,
            rtc_queue_threshold=rtc.queue_threshold,
        )  # fmt: skip

    def _action_order(self, loaded: LoadedPolicy) -> list[str]:
        """The policy's own action order when it names one with the robot's keys, else the robot's."""
        # A remote policy has no config here: its server holds it.
        named = list(getattr(getattr(loaded.policy, "config", None), "action_feature_names", None) or [])
        return named if sorted(named) == sorted(self.action_keys) else self.action_keys

    def disconnect(self) -> str | None:
        """Disconnect, releasing torque (LeRobot's disable_torque_on_disconnect); why it could not, if so."""
        return release(self.robot)


def _side_by_side(images: list[np.ndarray]) -> np.ndarray:
    height = min(image.shape[0] for image in images)
    return np.concatenate([image[:height] for image in images], axis=1)
