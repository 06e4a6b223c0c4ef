"""A policy on a ``runner serve`` server, used where a local policy would be: ``reset()`` and
``select_action(batch)``, so that LeRobot's own rollout drives it unchanged.

It speaks LeRobot's async-inference protocol with LeRobot's own pieces (``RemotePolicyConfig``,
``TimedObservation``, the chunked observation stream, the aggregate functions) and the queue semantics of its
``RobotClient``: a new observation goes out when the action queue falls to ``chunk_size_threshold`` of a chunk,
overlapping chunks are merged with the aggregate function. ``RobotClient`` itself is not reused: it opens a
plaintext channel without a token. Two deliberate differences: an observation is labelled with the step the
next action will take (``latest + 1``; LeRobot's client labels it ``max(latest, 0)``, so the first action of
every chunk is one already executed), and in a simulation the world waits for a late chunk (lockstep), which
is counted as an underrun.
"""

from __future__ import annotations

import pickle  # nosec B403: replies of a server the client chose and authenticated with TLS
import threading
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
import torch
from lerobot.async_inference.configs import get_aggregate_function
from lerobot.async_inference.helpers import RemotePolicyConfig, TimedAction, TimedObservation
from lerobot.transport import services_pb2, services_pb2_grpc
from lerobot.transport.utils import send_bytes_in_chunks

from runner.lerobot_adapter.checkpoints import IMAGES
from runner.serving.security import client_channel

ACTION_DIM_METADATA = "x-runner-action-dim"  # runner's clients say how many joints they command
WEIGHTS_METADATA = "x-runner-weights-sha256"  # and which checkpoint they evaluate (its weights' sha256)


class RemoteLost(RuntimeError):
    """No action arrived within the stale-action timeout: the server died or the link dropped.

    ``idle_s``: how long the arm had been without a new action when the episode was given up.
    """

    def __init__(self, message: str, idle_s: float) -> None:
        super().__init__(message)
        self.idle_s = idle_s


class RemoteRefused(RuntimeError):
    """The server refused this client: its token, or the handshake (the server's message names both sides)."""


@dataclass
class LinkStats:
    """One episode's link figures."""

    obs_to_action_s: list[float] = field(default_factory=list)  # observation -> the first action it produced runs
    chunk_rtt_s: list[float] = field(default_factory=list)  # observation sent -> its chunk arrived
    underruns: int = 0  # steps that found no action waiting
    steps: int = 0
    first_action: float | None = None  # the achieved rate is over the intervals between the episode's actions
    last_action: float | None = None

    def summary(self) -> dict[str, float | int | None]:
        def quantile(values: list[float], q: float) -> float | None:
            return round(1000 * float(np.quantile(values, q)), 2) if values else None

        span = (self.last_action - self.first_action) if self.steps > 1 else 0.0
        return {
            "latency_ms_p50": quantile(self.obs_to_action_s, 0.5),
            "latency_ms_p99": quantile(self.obs_to_action_s, 0.99),
            "chunk_rtt_ms_p50": quantile(self.chunk_rtt_s, 0.5), "underruns": self.underruns,
            "control_hz": round((self.steps - 1) / span, 2) if span > 0 else None,
        }  # fmt: skip


class RemotePolicy(torch.nn.Module):  # LeRobot's rollout asks for a module
    def __init__(
        self,
        address: str,
        policy_type: str,
        features: dict[str, dict],
        action_dim: int,
        actions_per_chunk: int,
        chunk_size_threshold: float = 0.5,
        aggregate: str = "weighted_average",
        stale_timeout_s: float = 2.0,
        certificate: bytes | None = None,
        token: str | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        super().__init__()
        self.address = address
        self._weights = weights_sha256
        self._instructions = RemotePolicyConfig(policy_type, f"runner-client:{address}", features, actions_per_chunk)
        self._joints = list(features["observation.state"]["names"])
        self._action_dim = action_dim
        self._threshold = chunk_size_threshold
        self._aggregate = get_aggregate_function(aggregate)
        self._stale_timeout_s = stale_timeout_s
        self._channel = client_channel(address, certificate, token)
        self._stub = services_pb2_grpc.AsyncInferenceStub(self._channel)
        self._lock = threading.Condition()
        self._queue: dict[int, torch.Tensor] = {}
        self._latest = -1
        self._chunk = actions_per_chunk
        self._sent_at: dict[int, float] = {}  # observations sent and not yet answered, by step
        self._must_go: int | None = None  # the step of an unanswered must-go observation (the server answers it)
        self._answer: tuple[int, float] | None = None  # the newest chunk's first step still ahead, and its obs time
        self._closed = threading.Event()
        self.stats = LinkStats()
        self._last_action_at = time.monotonic()
        self._receiver: threading.Thread | None = None

    def connect(self) -> None:
        try:
            self._stub.Ready(services_pb2.Empty(), timeout=self._stale_timeout_s)
            self._stub.SendPolicyInstructions(
                services_pb2.PolicySetup(data=pickle.dumps(self._instructions)),
                metadata=((ACTION_DIM_METADATA, str(self._action_dim)), (WEIGHTS_METADATA, self._weights or "")),
                timeout=30,
            )  # fmt: skip
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION):
                raise RemoteRefused(
                    f"the policy server at {self.address} refused this client: {error.details()}"
                ) from None
            raise RemoteLost(f"no policy server answers at {self.address} ({error.code().name})", 0.0) from None
        self._receiver = threading.Thread(target=self._receive, name="runner-remote-actions", daemon=True)
        self._receiver.start()

    def close(self) -> None:
        self._closed.set()
        self._channel.close()

    def reset(self) -> None:
        """A new episode. Steps keep counting up over the connection, so a chunk still on its way from the last
        episode is recognised as stale and dropped."""
        with self._lock:
            self._queue.clear()
            self._latest = max([self._latest, *self._sent_at])
            self._sent_at.clear()
            self._must_go = None
            self._answer = None
        self.stats = LinkStats()
        self._last_action_at = time.monotonic()

    def select_action(self, batch: dict) -> torch.Tensor:
        """The next action for a batch of one observation (LeRobot's env processing already applied)."""
        observed = time.perf_counter()
        with self._lock:
            low = len(self._queue) / self._chunk <= self._threshold
            empty = not self._queue
            answer_coming = self._must_go is not None
        if low and not (empty and answer_coming):
            self._send(batch, empty, observed)
        deadline = time.monotonic() + self._stale_timeout_s
        with self._lock:
            if not self._queue:
                self.stats.underruns += 1
            while not self._queue:
                timed_out = not self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
                if (self._closed.is_set() or timed_out) and not self._queue:
                    raise RemoteLost(
                        f"no action from the policy server at {self.address} for {self._stale_timeout_s:g} s",
                        self._idle(),
                    )
            step = min(self._queue)
            action = self._queue.pop(step)
            self._latest = step
            if self._answer is not None and step >= self._answer[0]:
                self.stats.obs_to_action_s.append(time.perf_counter() - self._answer[1])
                self._answer = None
        self._last_action_at = time.monotonic()
        self.stats.steps += 1
        self.stats.last_action = time.perf_counter()
        if self.stats.first_action is None:
            self.stats.first_action = self.stats.last_action
        return action.unsqueeze(0)

    def _send(self, batch: dict, must_go: bool, observed: float) -> None:
        task = batch.get("task") or ""  # a list of one in LeRobot's env processing, a string in its rollout
        observation = {"task": task[0] if isinstance(task, list | tuple) else task}
        state = batch["observation.state"][0].detach().cpu().numpy()
        observation |= {joint: float(value) for joint, value in zip(self._joints, state, strict=True)}
        for name, image in batch.items():
            if name.startswith(IMAGES):
                hwc = (image[0].detach().cpu().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                observation[name.rsplit(".", 1)[-1]] = hwc
        with self._lock:
            step = self._latest + 1
            self._sent_at[step] = observed
            if must_go:
                self._must_go = step
        timed = TimedObservation(timestamp=time.time(), observation=observation, timestep=step, must_go=must_go)
        try:
            self._stub.SendObservations(
                send_bytes_in_chunks(pickle.dumps(timed), services_pb2.Observation), timeout=self._stale_timeout_s
            )
        except grpc.RpcError as error:
            raise RemoteLost(
                f"the policy server at {self.address} stopped answering ({error.code().name})", self._idle()
            ) from None

    def _idle(self) -> float:
        return time.monotonic() - self._last_action_at

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                reply = self._stub.GetActions(services_pb2.Empty(), timeout=self._stale_timeout_s + 5)
            except grpc.RpcError:
                if self._closed.wait(0.05):
                    return
                continue
            if not reply.data:
                continue
            arrived = time.perf_counter()
            chunk: list[TimedAction] = pickle.loads(reply.data)  # nosec B301
            with self._lock:
                first = chunk[0].get_timestep() if chunk else None
                if first not in self._sent_at:
                    continue  # an answer to an observation of an earlier episode
                observed = self._sent_at[first]
                self.stats.chunk_rtt_s.append(arrived - observed)
                # Observations before this one were superseded on the server (it keeps only the newest).
                self._sent_at = {step: at for step, at in self._sent_at.items() if step > first}
                if self._must_go is not None and self._must_go <= first:
                    self._must_go = None
                # As RobotClient._aggregate_action_queues: the queue becomes the new chunk's steps still ahead,
                # each merged with the queued action of the same step.
                merged = {}
                for timed in chunk:
                    step, action = timed.get_timestep(), timed.get_action()
                    if step > self._latest:
                        queued = self._queue.get(step)
                        merged[step] = action if queued is None else self._aggregate(queued, action)
                self._queue = merged
                if merged:
                    self._answer = (min(merged), observed)
                self._lock.notify_all()
