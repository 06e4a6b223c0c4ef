"""runner's pick-and-place world as a LeRobot env type, ``runner_sim``, for LeRobot's own evaluator.

``lerobot-eval --env.type=runner_sim --env.experiment=sim_demo --policy.path=<checkpoint>`` evaluates in the
world ``runner eval experiment=sim_demo`` uses: the env composes runner's config (the experiment preset and
the task) and plans its episodes with runner's own planner, so seed ``first_seed + i`` gets the scene and
instruction of runner's i-th held-out episode. Fields left unset (cameras, image size, fps, episode length,
render) take the composed config's values; set, they override it. The plugin distribution
``lerobot_env_runner_sim`` (plugins/) imports this module for LeRobot's ``register_third_party_plugins``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral

import gymnasium as gym
from gymnasium.vector import AutoresetMode
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

ENV_TYPE = "runner_sim"
# runner eval's held-out seeds start here (runner.stages.eval.policies.HELD_OUT_SEED).
FIRST_HELD_OUT_SEED = 10_000


@EnvConfig.register_subclass(ENV_TYPE)
@dataclass
class RunnerSimEnv(EnvConfig):
    # A runner experiment preset (experiments/ or conf/experiment/) whose task, cameras and episode to use.
    experiment: str | None = None
    # A runner task (conf/task/); None: the experiment's.
    task: str | None = None
    # Only this scenario of the task; None: every scenario, in runner's order.
    scenario: str | None = None
    # Camera roles (wrist, side, top); None: the composed config's cameras.
    cameras: list[str] | None = None
    image_width: int | None = None
    image_height: int | None = None
    fps: int | None = None
    # Control steps before an episode is cut off; None: episode.episode_time_s x fps.
    episode_length: int | None = None
    # fast or full (runner.sim.world); None: the composed robot's.
    render: str | None = None
    # The seed of the plan's first episode: lerobot-eval's --seed counts episodes from here.
    first_seed: int = FIRST_HELD_OUT_SEED
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from runner.core.conf import compose_config
        from runner.episodes.scenarios import max_frames, plan_episodes
        from runner.schema.devices import camera_moves, is_simulated

        overrides = [f"experiment={self.experiment}"] if self.experiment else []
        overrides += [f"task={self.task}"] if self.task else []
        cfg = compose_config(overrides)
        if not is_simulated(cfg.robot):
            raise ValueError(
                f"env.experiment={self.experiment} is for a real robot; runner_sim needs the simulated one"
            )
        self.camera_sizes = {}
        for role in list(self.cameras) if self.cameras is not None else list(cfg.cameras):
            composed = cfg.cameras.get(role)
            width = self.image_width or (composed.width if composed else None)
            height = self.image_height or (composed.height if composed else None)
            if not (width and height):
                raise ValueError(f"camera '{role}' has no size in the composed config: set env.image_width/height")
            self.camera_sizes[role] = (int(width), int(height))
        self.fps = self.fps or int(cfg.episode.fps)
        cfg.episode.fps = self.fps
        self.episode_length = self.episode_length or max_frames(cfg.episode)
        self.render = self.render or cfg.robot.render.value
        self.camera_moves = camera_moves(cfg.robot)
        scenarios = [s for s in cfg.task.scenarios if self.scenario in (None, s.name)]
        if self.scenario and not scenarios:
            known = [s.name for s in cfg.task.scenarios]
            raise ValueError(f"env.scenario={self.scenario} is not a scenario of task {cfg.task.name}: {known}")
        if scenarios:
            cfg.task.scenarios = scenarios
        cycle = sum(s.num_episodes for s in scenarios) if scenarios else 1
        # One cycle of runner's plan: episode i of any length repeats it (runner.episodes.scenarios).
        self.plan = plan_episodes(cfg.task, list(range(self.first_seed, self.first_seed + cycle)), "env.scenario")
        self.features = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(6,)),
                         "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(6,))}  # fmt: skip
        self.features_map = {ACTION: ACTION, "agent_pos": OBS_STATE}
        for role, (width, height) in self.camera_sizes.items():
            self.features[f"pixels/{role}"] = PolicyFeature(type=FeatureType.VISUAL, shape=(height, width, 3))
            self.features_map[f"pixels/{role}"] = f"{OBS_IMAGES}.{role}"

    @property
    def gym_kwargs(self) -> dict:
        return {}

    def create_envs(self, n_envs: int, use_async_envs: bool = False) -> dict[str, dict[int, gym.vector.VectorEnv]]:
        from runner.sim.env import PickPlaceEnv

        episodes = PlannedScenes(self.plan, self.first_seed)
        sizes, fps, steps, render, moves = (
            self.camera_sizes, self.fps, self.episode_length, self.render, self.camera_moves
        )  # fmt: skip

        def make_one() -> gym.Env:
            return PickPlaceEnv(sizes, fps, steps, episodes, render=render, camera_moves=moves)

        vector = gym.vector.AsyncVectorEnv if use_async_envs and n_envs > 1 else gym.vector.SyncVectorEnv
        return {ENV_TYPE: {0: vector([make_one for _ in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP)}}


class PlannedScenes(Mapping):
    """seed -> (instruction, scene variation) for any seed: seed ``first_seed + i`` is episode i of runner's
    plan, which repeats every ``len(plan)`` episodes (lerobot-eval counts seeds up from its ``--seed``)."""

    def __init__(self, plan: list, first_seed: int) -> None:
        self.plan, self.first_seed = plan, first_seed

    def __getitem__(self, seed: int) -> tuple:
        from runner.sim.world import Variation

        planned = self.plan[(int(seed) - self.first_seed) % len(self.plan)]
        return planned.instruction, Variation(**planned.variation)

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, Integral)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first_seed, self.first_seed + len(self.plan)))

    def __len__(self) -> int:
        return len(self.plan)
