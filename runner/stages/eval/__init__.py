"""``runner eval``: roll checkpoints out on a matched list of episodes, in simulation or on a real arm.

Every episode's start state and instruction come from its seed and the task's scenarios, so every
checkpoint of a comparison faces exactly the same episodes. The policy is a train run's checkpoint
(``policy_run=`` + ``eval.checkpoint=step|last``) or any LeRobot policy folder (``eval.policy_path=``).
In simulation, several checkpoints (``eval.checkpoint=all``, a list, or ``-m``) become a sweep with one
job per checkpoint. On a real robot they become one blinded session: the operator sets up each episode's
start, the episodes of all checkpoints are interleaved in a random order that never names the checkpoint,
and the operator scores each episode with a key. Either way each checkpoint gets its own run with
``eval/metrics.json`` and ``eval/episodes.csv`` (written as episodes finish), so ``runner compare`` reads
both alike; videos of the first episodes; in simulation an optional rollouts dataset.
"""

from __future__ import annotations

from omegaconf import DictConfig

from runner.core.context import StageContext
from runner.schema.devices import is_simulated


def evaluate(cfg: DictConfig, ctx: StageContext) -> dict | list[dict]:
    if is_simulated(cfg.robot):
        from runner.stages.eval.in_sim import evaluate_in_sim

        return evaluate_in_sim(cfg, ctx)
    from runner.stages.eval.on_robot import evaluate_on_robot

    return evaluate_on_robot(cfg, ctx)
