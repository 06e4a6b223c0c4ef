"""A scripted operator that solves the pick-and-place task, standing in for the human in simulation.

It drives lerobot-env-so101's phase controller (hover, descend, close, lift, traverse, lower, open,
retreat) through the world's IK and emits joint targets, like a leader arm would. Speed, noise and a
failure rate make it an imperfect human; a learning rate makes it faster with practice (a power law:
speed x (episode + 1) ** learning_rate), which the operator learning-curve report can recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lerobot_env_so101.scripted.pick_place import Phase, PickPlaceController

from runner.sim.world import PickPlaceWorld


@dataclass(frozen=True)
class OperatorStyle:
    speed: float = 1.0
    noise: float = 0.0
    failure_rate: float = 0.0
    learning_rate: float = 0.0


# lerobot-env-so101's controller is tuned for 10 Hz: its step size and phase timeouts count control steps.
CONTROLLER_PERIOD_S = 0.1


class ScriptedOperator:
    """Decides like the 10 Hz controller it wraps, whatever the recording fps: between its decisions it holds
    the last joint targets, as a hand on a leader arm would."""

    def __init__(self, world: PickPlaceWorld, style: OperatorStyle) -> None:
        self.world = world
        self.style = style
        self.controller = PickPlaceController()
        self._frames_per_decision = max(1, round(CONTROLLER_PERIOD_S / world.control_dt))
        self._frame = 0
        self._targets: dict[str, float] | None = None
        self.rng = np.random.default_rng(0)
        self._fumble_at: int | None = None
        self._steps = 0
        self.speed = style.speed

    def start_episode(self, seed: int, practice: int) -> None:
        """Begin an episode; ``practice`` is how many episodes this operator has recorded before."""
        self.controller.reset()
        self.rng = np.random.default_rng(seed + 7919)
        self.speed = self.style.speed * (practice + 1) ** self.style.learning_rate
        # A failing episode drops the cube somewhere during the carry.
        fails = self.rng.random() < self.style.failure_rate
        self._fumble_at = int(self.rng.integers(2, 8)) if fails else None
        self._steps = 0
        self._frame = 0
        self._targets = None

    def act(self) -> dict[str, float]:
        if self._targets is not None and self._frame % self._frames_per_decision:
            self._frame += 1
            return self._targets
        self._frame += 1
        self._targets = self._decide()
        return self._targets

    def _decide(self) -> dict[str, float]:
        world = self.world
        action = self.controller.act(world.grasp_position, world.block_position, world.target_position)
        delta = np.clip(action[:3] * self.speed, -1.0, 1.0)
        if self.style.noise:
            delta = delta + self.rng.normal(0.0, self.style.noise, 3)
        grasp = float(action[3])
        if self._fumble_at is not None and self.controller.phase is Phase.TRAVERSE:
            self._steps += 1
            if self._steps >= self._fumble_at:
                grasp = 1.0
        return world.cartesian_targets(delta, grasp)
