"""The Gymnasium view of the sim world that eval rolls policies out in: seeds, instructions, reward, success."""

import numpy as np
import pytest

from runner.sim.env import PickPlaceEnv
from runner.sim.operator import OperatorStyle, ScriptedOperator
from runner.sim.world import JOINTS, Variation

EPISODES = {
    7: ("pick up the red cube and place it on the blue square", Variation()),
    8: ("put the cube on the target", Variation(target_position=(0.22, 0.06))),
}


@pytest.fixture
def env():
    environment = PickPlaceEnv({"side": (64, 48)}, fps=10, max_steps=120, episodes=EPISODES)
    yield environment
    environment.close()


def _drive(env, seed):
    observation, _ = env.reset(seed=seed)
    operator = ScriptedOperator(env.world, OperatorStyle())
    operator.start_episode(seed, practice=0)
    total, steps = 0.0, 0
    while True:
        targets = operator.act()
        action = np.array([targets[f"{j}.pos"] for j in JOINTS], dtype=np.float32)
        observation, reward, terminated, truncated, info = env.step(action)
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            return observation, total, steps, terminated, info


def test_the_scripted_operator_succeeds_in_the_env_with_full_reward(env):
    observation, total, steps, terminated, info = _drive(env, 8)
    assert terminated and info["is_success"]
    assert total == pytest.approx(1.0)  # progress credit sums to 1 at success
    assert steps < 120
    assert observation["pixels"]["side"].shape == (48, 64, 3)
    assert observation["agent_pos"].shape == (6,)
    assert env.task == env.task_description == "put the cube on the target"


def test_a_seed_fixes_the_start_and_an_idle_policy_earns_nothing(env):
    first, _ = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    assert np.array_equal(first["pixels"]["side"], again["pixels"]["side"])
    assert not np.array_equal(first["pixels"]["side"], other["pixels"]["side"])
    env.reset(seed=7)
    hold = again["agent_pos"]
    rewards, truncated = [], False
    while not truncated:
        _, reward, terminated, truncated, _ = env.step(hold)
        rewards.append(reward)
        assert not terminated
    assert len(rewards) == 120 and sum(rewards) == 0.0
    assert env.render().shape == (48, 64, 3)


def test_an_unplanned_seed_is_refused(env):
    with pytest.raises(KeyError, match="not one of the planned episodes"):
        env.reset(seed=99)
