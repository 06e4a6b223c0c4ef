"""Evaluation through a ``runner serve`` server (eval.inference=remote), in simulation and on a robot.

Connecting is checked before the run starts (an address nobody answers at, a server holding another policy:
config errors). A link lost mid-episode aborts that episode: it is not scored (the policy did not fail; the
network did), its row says so, the episodes before it stay scored, and the server is waited for up to
eval.reconnect_s; when it answers again the aborted episode runs again and the session goes on.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from runner.core.errors import ConfigError
from runner.stages.eval.policies import PolicySource

if TYPE_CHECKING:
    from runner.lerobot_adapter.evaluation import LoadedPolicy
    from runner.lerobot_adapter.remote_policy import RemoteLost

log = logging.getLogger("runner.eval")

RECONNECT_EVERY_S = 1.0


class LinkGone(RuntimeError):
    """The policy server did not come back within eval.reconnect_s."""


def refuse_what_remote_cannot_do(cfg: DictConfig, policies: int) -> None:
    """The remote settings a session cannot use, before anything starts."""
    if not cfg.eval.server:
        raise ConfigError("eval.server", "is not set, and eval.inference=remote needs it",
                          "give the address `runner serve` printed: eval.server=HOST:PORT")  # fmt: skip
    if cfg.eval.batch_size != 1:
        raise ConfigError("eval.batch_size", f"is {cfg.eval.batch_size}: a policy server serves one client at a time",
                          "use eval.batch_size=1 with eval.inference=remote")  # fmt: skip
    if policies != 1:
        raise ConfigError("eval.checkpoint", f"names {policies} checkpoints: a policy server serves one policy",
                          "evaluate one checkpoint per session with eval.inference=remote")  # fmt: skip
    if cfg.eval.server_cert and not Path(cfg.eval.server_cert).expanduser().is_file():
        raise ConfigError("eval.server_cert", f"is {cfg.eval.server_cert}, which is not a file",
                          "give the serve run's serve/server.crt")  # fmt: skip


class RemoteLink:
    """The connection to the server: the policy it serves, the episodes aborted by a lost link."""

    def __init__(self, cfg: DictConfig, source: PolicySource, cameras: dict[str, tuple[int, int]], joints: list[str]):
        self.settings, self.source, self.cameras, self.joints = cfg.eval, source, cameras, joints
        self.loaded: LoadedPolicy | None = None
        self.aborted: list[dict] = []

    @property
    def address(self) -> str:
        return self.settings.server

    def connect(self) -> LoadedPolicy:
        """The served policy, handshake passed; a ConfigError when no server answers or it refuses."""
        from runner.lerobot_adapter.remote_policy import RemoteLost, RemoteRefused

        try:
            self.loaded = self._open()
        except (RemoteLost, RemoteRefused) as error:
            raise ConfigError(
                "eval.server", str(error), "start `runner serve` with this policy, or fix the address"
            ) from None
        return self.loaded

    def lost(self, index: int, error: RemoteLost, record_aborted: Callable[[dict], None]) -> LoadedPolicy:
        """Episode ``index`` lost its link: record it aborted, wait for the server, and return the policy to run
        the episode again with; LinkGone when the server does not come back within eval.reconnect_s."""
        from runner.lerobot_adapter.remote_policy import RemoteLost

        aborted = {"episode": index, "reason": str(error), "stopped_after_s": round(error.idle_s, 3),
                   "steps": self.loaded.policy.stats.steps}  # fmt: skip
        self.aborted.append(aborted)
        record_aborted(aborted)
        self.close()
        wait = self.settings.reconnect_s
        log.warning("episode %d aborted, not scored: %s; the arm got no action for %.2f s. Waiting up to %g s for "
                    "the server to come back (eval.reconnect_s)", index + 1, error, error.idle_s, wait)  # fmt: skip
        deadline = time.monotonic() + wait
        while True:
            try:
                self.loaded = self._open()
            except RemoteLost:
                if time.monotonic() >= deadline:
                    raise LinkGone(
                        f"the policy server at {self.address} was lost during episode {index + 1} and did not come "
                        f"back within {wait:g} s (eval.reconnect_s); the episodes scored before it are kept in "
                        "eval/episodes.csv. Restart `runner serve` and run the evaluation again"
                    ) from None
                time.sleep(RECONNECT_EVERY_S)
                continue
            log.info("reconnected to %s: episode %d runs again", self.address, index + 1)
            return self.loaded

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.policy.close()

    def _open(self) -> LoadedPolicy:
        from runner.lerobot_adapter import evaluation
        from runner.serving.security import read_token

        token = read_token("RUNNER_SERVE_TOKEN", None)
        return evaluation.remote_policy(self.source.folder, self.settings, self.cameras, self.joints, token)


def link_summary(links: list[dict], aborted: list[dict]) -> dict:
    """A session's link figures for metrics.json: the median of the episodes' figures, underruns summed, and
    the episodes aborted by a lost link."""

    def median(key: str):
        values = [link[key] for link in links if link.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    return {"latency_ms_p50": median("latency_ms_p50"), "latency_ms_p99": median("latency_ms_p99"),
            "chunk_rtt_ms_p50": median("chunk_rtt_ms_p50"), "control_hz": median("control_hz"),
            "underruns": sum(link.get("underruns", 0) for link in links), "aborted_episodes": aborted}  # fmt: skip
