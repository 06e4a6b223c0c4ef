"""The pick-and-place world as a Gymnasium environment, for LeRobot's own evaluation rollout.

Observations follow LeRobot's gym convention (``pixels`` by camera role, ``agent_pos`` the six joint
positions), which LeRobot maps onto ``observation.images.<role>`` and ``observation.state``: the same
features, units and camera poses as a dataset recorded with the simulated robot. Actions are the six
joint targets. ``reset(seed=s)`` places the scene of the planned episode with that seed and sets its
instruction as ``task``; the reward is the increase in task progress (see ``PickPlaceWorld.progress``), so
an episode's summed reward is the furthest stage it reached, between 0 and 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from runner.sim.world import JOINTS, PickPlaceWorld, Variation


class PickPlaceEnv(gym.Env):
    def __init__(
        self,
        cameras: dict[str, tuple[int, int]],
        fps: int,
        max_steps: int,
        episodes: Mapping[int, tuple[str, Variation]],
        render: str = "fast",
        camera_moves: dict[str, list[float]] | None = None,
    ) -> None:
        """``cameras``: role -> (width, height); ``episodes``: seed -> (instruction, scene variation);
        ``render``, ``camera_moves``: how the world is drawn and where its cameras stand (``runner.sim.world``)."""
        super().__init__()
        self.world = PickPlaceWorld(cameras, control_dt=1.0 / fps, render=render, camera_moves=camera_moves)
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": fps}
        self.render_mode = "rgb_array"
        self.episodes = episodes
        self._max_episode_steps = max_steps
        limits = self.world.joint_limits()
        low = np.array([limits[f"{j}.pos"][0] for j in JOINTS], dtype=np.float32)
        high = np.array([limits[f"{j}.pos"][1] for j in JOINTS], dtype=np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Dict(
                    {role: gym.spaces.Box(0, 255, (h, w, 3), dtype=np.uint8) for role, (w, h) in cameras.items()}
                ),
                "agent_pos": gym.spaces.Box(-np.inf, np.inf, (len(JOINTS),), dtype=np.float32),
            }
        )
        self.seed_in_use: int | None = None
        self.task = self.task_description = ""
        self._steps = 0
        self._best_progress = 0.0
        self._pixels: dict[str, np.ndarray] = {}

    def _observation(self) -> dict[str, Any]:
        self._pixels = {role: self.world.render(role) for role in self.world.cameras}
        joints = self.world.joint_positions()
        return {"pixels": dict(self._pixels), "agent_pos": np.array([joints[f"{j}.pos"] for j in JOINTS], np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None:
            if seed not in self.episodes:
                raise KeyError(f"seed {seed} is not one of the planned episodes {sorted(self.episodes)}")
            self.seed_in_use = seed
        if self.seed_in_use is None:
            raise RuntimeError("the first reset needs the seed of a planned episode")
        instruction, variation = self.episodes[self.seed_in_use]
        self.world.reset(self.seed_in_use, variation)
        self.task = self.task_description = instruction
        self._steps, self._best_progress = 0, 0.0
        return self._observation(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.world.step({f"{joint}.pos": float(value) for joint, value in zip(JOINTS, action, strict=True)})
        self._steps += 1
        progress = self.world.progress()
        reward = max(0.0, progress - self._best_progress)
        self._best_progress = max(self._best_progress, progress)
        success = progress >= 1.0
        truncated = not success and self._steps >= self._max_episode_steps
        return self._observation(), reward, success, truncated, {"is_success": success}

    def render(self) -> np.ndarray:
        """The last observation's camera images side by side (no extra rendering)."""
        frames = list(self._pixels.values())
        height = max(frame.shape[0] for frame in frames)
        padded = [np.pad(f, ((0, height - f.shape[0]), (0, 0), (0, 0))) for f in frames]
        return np.concatenate(padded, axis=1)

    def close(self) -> None:
        self.world.close()
