"""The simulated SO-101 arm and scripted operator, registered as LeRobot robot/teleoperator types.

LeRobot's record and rollout code paths see an ordinary ``Robot`` and ``Teleoperator``: the observation is
``<joint>.pos`` for the six joints plus one image per camera role, the action the six ``<joint>.pos``
targets, with the feature names and units of LeRobot's ``so101_follower`` (``use_degrees=True``). The
extras a simulation can offer (placing objects for an episode, a success signal) are plain methods that the
stages use when a device has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from lerobot.robots.config import RobotConfig
from lerobot.robots.robot import Robot
from lerobot.teleoperators.config import TeleoperatorConfig
from lerobot.teleoperators.teleoperator import Teleoperator

from runner.schema.devices import SIM_OPERATOR, SIM_ROBOT
from runner.sim.operator import OperatorStyle, ScriptedOperator
from runner.sim.world import JOINTS, PickPlaceWorld, Variation

# The worlds of this process by robot id: the scripted operator drives the arm it watches.
_WORLDS: dict[str, PickPlaceWorld] = {}


@RobotConfig.register_subclass(SIM_ROBOT)
@dataclass
class SimSO101Config(RobotConfig):
    id: str | None = SIM_ROBOT
    fps: int = 30
    # Camera role -> [width, height]; roles: wrist, side, top.
    camera_sizes: dict[str, list[int]] = field(default_factory=dict)
    max_relative_target: float | None = None
    # fast or full: how the world is drawn (runner.sim.world).
    render: str = "fast"
    # Static cameras moved off their place: role -> [dx, dy, dz(, turn_deg)] (runner.sim.world).
    camera_moves: dict[str, list[float]] = field(default_factory=dict)
    # The scene placed on connect. runner starts each episode with its own seed (start_episode); LeRobot's
    # record and rollout have no per-episode hook, so their episodes share this one scene.
    scene_seed: int = 0


class SimSO101(Robot):
    config_class = SimSO101Config
    name = SIM_ROBOT

    def __init__(self, config: SimSO101Config) -> None:
        super().__init__(config)
        self.config = config
        self.world: PickPlaceWorld | None = None
        # Camera role -> (width, height): LeRobot's record sizes its image writers by ``len(robot.cameras)``.
        self.cameras = {role: tuple(size) for role, size in config.camera_sizes.items()}

    @cached_property
    def observation_features(self) -> dict:
        images = {role: (height, width, 3) for role, (width, height) in self.config.camera_sizes.items()}
        return {f"{joint}.pos": float for joint in JOINTS} | images

    @cached_property
    def action_features(self) -> dict:
        return {f"{joint}.pos": float for joint in JOINTS}

    @property
    def is_connected(self) -> bool:
        return self.world is not None

    def connect(self, calibrate: bool = True) -> None:
        sizes = {role: (int(w), int(h)) for role, (w, h) in self.config.camera_sizes.items()}
        self.world = PickPlaceWorld(sizes, control_dt=1.0 / self.config.fps, render=self.config.render,
                                    camera_moves=self.config.camera_moves)  # fmt: skip
        self.world.reset(self.config.scene_seed, Variation())
        for role in sizes:  # the first frame of a camera sets up its GL context: not inside an episode's loop
            self.world.render(role)
        _WORLDS[self.id] = self.world

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        """A simulated arm is calibrated by construction."""

    def configure(self) -> None:
        """Nothing to write to simulated motors."""

    def get_observation(self) -> dict:
        observation: dict = dict(self.world.joint_positions())
        for role in self.config.camera_sizes:
            observation[role] = self.world.render(role)
        return observation

    def send_action(self, action: dict) -> dict:
        targets = {key: float(action[key]) for key in self.action_features}
        if self.config.max_relative_target is not None:
            present = self.world.joint_positions()
            limit = self.config.max_relative_target
            targets = {k: present[k] + float(np.clip(v - present[k], -limit, limit)) for k, v in targets.items()}
        self.world.step(targets)
        return targets

    def disconnect(self) -> None:
        if self.world is not None:
            self.world.close()
            _WORLDS.pop(self.id, None)
            self.world = None

    # --- what only a simulation can do --------------------------------------------------------------

    def start_episode(self, seed: int, variation: Variation) -> None:
        """Place the cube, target and distractors for a new episode (a human would reset the scene)."""
        self.world.reset(seed, variation)

    def is_success(self) -> bool:
        return self.world.is_success()

    def joint_limits(self) -> dict[str, tuple[float, float]]:
        return self.world.joint_limits()


@TeleoperatorConfig.register_subclass(SIM_OPERATOR)
@dataclass
class SimScriptedConfig(TeleoperatorConfig):
    id: str | None = "scripted"
    # The id of the simulated robot whose world this operator works in.
    robot_id: str = SIM_ROBOT
    speed: float = 1.0
    noise: float = 0.0
    failure_rate: float = 0.0
    learning_rate: float = 0.0


class SimScripted(Teleoperator):
    config_class = SimScriptedConfig
    name = SIM_OPERATOR

    def __init__(self, config: SimScriptedConfig) -> None:
        super().__init__(config)
        self.config = config
        self.operator: ScriptedOperator | None = None
        self._connected = False

    @cached_property
    def action_features(self) -> dict:
        return {f"{joint}.pos": float for joint in JOINTS}

    @cached_property
    def feedback_features(self) -> dict:
        return {}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        """The operator watches the world of the simulated robot ``robot_id``; LeRobot's record and teleoperate
        connect the teleoperator first, so the world is looked up when the first action is asked for."""
        self._connected = True

    def _watching(self) -> ScriptedOperator:
        if self.operator is None:
            world = _WORLDS.get(self.config.robot_id)
            if world is None:
                raise ConnectionError(
                    f"the scripted operator needs the simulated robot '{self.config.robot_id}' connected first"
                )
            style = OperatorStyle(
                self.config.speed, self.config.noise, self.config.failure_rate, self.config.learning_rate
            )
            self.operator = ScriptedOperator(world, style)
        return self.operator

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        """Nothing to calibrate."""

    def configure(self) -> None:
        """Nothing to configure."""

    def get_action(self) -> dict:
        return self._watching().act()

    def send_feedback(self, feedback: dict) -> None:
        """The script needs no feedback."""

    def disconnect(self) -> None:
        self.operator = None
        self._connected = False

    def start_episode(self, seed: int, practice: int) -> None:
        """A new episode; ``practice`` counts the episodes this operator recorded before it."""
        self._watching().start_episode(seed, practice)
