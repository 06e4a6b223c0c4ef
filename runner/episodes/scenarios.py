"""Which scenario, instruction and start state each episode gets: shared by recording and evaluation.

A seed fixes an episode's start state (object and target placement, distractors, jitter); the scenarios of
the task are laid out in order, each ``num_episodes`` times, and cycled when more episodes are asked for.
Evaluating every checkpoint on the same seed list therefore gives every checkpoint the same starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core.errors import ConfigError

VARIATION_KEYS = ("object_region", "target_position", "distractors", "lighting_jitter", "camera_jitter")


@dataclass(frozen=True)
class PlannedEpisode:
    scenario: str
    instruction: str
    seed: int
    # Keyword arguments of the simulator's Variation (sequences as tuples); empty on a real robot.
    variation: dict
    # Real robot: how the operator sets the scene up (the scenario's start_positions, in turn); None if unlisted.
    start: str | None = None


def plan_episodes(task: DictConfig, seeds: Sequence[int], count_key: str) -> list[PlannedEpisode]:
    """One planned episode per seed, scenarios in order; ``count_key`` is the key an empty plan blames."""
    scenarios = list(task.scenarios) or [
        OmegaConf.create({"name": task.name, "instruction": task.instruction, "num_episodes": 1})
    ]
    blocks = [s for s in scenarios for _ in range(s.num_episodes)]
    if not seeds or not blocks:
        raise ConfigError(count_key, f"gives {len(seeds)} episodes", "set a positive count or scenario counts")
    plan = []
    uses: dict[str, int] = {}
    for index, seed in enumerate(seeds):
        scenario = blocks[index % len(blocks)]
        turn = uses[scenario.name] = uses.get(scenario.name, -1) + 1
        if not str(scenario.instruction).strip():
            raise ConfigError(
                f"task.scenarios[{scenarios.index(scenario)}].instruction",
                "is empty: every episode needs a natural-language instruction",
                "write what the robot should do, e.g. 'pick up the red cube and place it on the blue square'",
            )
        variation = {}
        for key in VARIATION_KEYS:
            value = scenario.get(key) if key in scenario else None
            if value is not None:
                variation[key] = tuple(value) if OmegaConf.is_list(value) else value
        starts = list(scenario.get("start_positions") or [])
        start = str(starts[turn % len(starts)]) if starts else None
        plan.append(PlannedEpisode(scenario.name, str(scenario.instruction), int(seed), variation, start))
    return plan


def max_frames(episode: Any) -> int:
    """The control steps an episode may take (``episode.episode_time_s`` at ``episode.fps``), at least one."""
    return max(1, round(episode.episode_time_s * episode.fps))
