"""The blinded trial order of a real-robot evaluation session, and what the operator sees and presses.

Every checkpoint faces every planned episode once. The session runs episode by episode (a block); within a
block the checkpoints come in a random order, so the operator sets up the same start for each of them in
turn, and slow drifts (light, battery, the operator's patience) fall on all checkpoints alike. The screen
names the trial, the scenario, the instruction and the start to set up, never the checkpoint.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from runner.episodes.keys import Key, KeyReader
from runner.episodes.scenarios import PlannedEpisode

SCORE_KEYS = {Key.SUCCESS, Key.FAILURE, Key.RERECORD, Key.STOP}


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based position in the session
    episode: int  # index into the episode plan
    policy: int  # index into the session's policies: never shown while the session runs


def blinded_order(n_policies: int, n_episodes: int, seed: int) -> list[Trial]:
    """Episode blocks in plan order, the policies shuffled within each block (a randomized block design)."""
    rng = random.Random(seed)
    pairs = []
    for episode in range(n_episodes):
        policies = list(range(n_policies))
        rng.shuffle(policies)
        pairs += [(episode, policy) for policy in policies]
    return [Trial(number, episode, policy) for number, (episode, policy) in enumerate(pairs, start=1)]


def draw_order_seed() -> int:
    return random.SystemRandom().randrange(2**31)


class OperatorStop(KeyboardInterrupt):
    """The operator pressed q: the session stops; the episodes scored so far stay on disk."""


class Console:
    """The operator's side of the session: prompts on stdout, answers from the terminal's keys."""

    def __init__(self, keys: KeyReader, total: int) -> None:
        self.keys, self.total = keys, total
        self.pressed: Key | None = None

    def say(self, text: str) -> None:
        print(text, flush=True)

    def announce(self, trial: Trial, planned: PlannedEpisode, n_episodes: int) -> None:
        self.say(
            f"\nTrial {trial.number}/{self.total} · episode {trial.episode + 1}/{n_episodes} "
            f"· scenario {planned.scenario} (seed {planned.seed})\n"
            f"  set up: {planned.start or 'the start of this scenario, as when recording'}\n"
            f"  instruction: {planned.instruction}\n"
            "  space: start the episode · q: stop the session"
        )

    def wait_for(self, allowed: set[Key]) -> Key:
        """Block until one of ``allowed`` is pressed (others are ignored)."""
        while True:
            key = self.keys.poll()
            if key in allowed:
                return key
            time.sleep(0.02)

    def episode_key(self) -> bool:
        """Non-blocking, for the control loop: True once s, f, r or q was pressed during the episode."""
        key = self.keys.poll()
        if key in SCORE_KEYS:
            self.pressed = key
        return self.pressed is not None

    def score(self) -> Key:
        """The operator's verdict on the episode that just ended: the key pressed during it, or asked now."""
        key, self.pressed = self.pressed, None
        if key is None:
            self.say("  time is up: s success · f failure · r redo this trial · q stop")
            key = self.wait_for(SCORE_KEYS)
        return key
