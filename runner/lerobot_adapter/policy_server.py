"""LeRobot's async-inference ``PolicyServer`` serving one policy runner chose, behind runner's gRPC set-up.

LeRobot's servicer does the protocol: observations in, timed action chunks out, its observation filtering
and chunk timing. runner changes what a client may ask: LeRobot loads whatever policy path a client names;
here the policy is loaded once when the server starts, and a client's policy instructions are a handshake
checked against it (policy type, cameras, state and action sizes), refused with both sides named.
"""

from __future__ import annotations

import logging
import pickle  # nosec B403: only ever on calls the token interceptor let through (runner.serving.security)
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from runner.core.errors import ConfigError
from runner.lerobot_adapter.checkpoints import IMAGES
from runner.lerobot_adapter.evaluation import LoadedPolicy, policy_type_and_inputs, renamed_inputs, weights_sha256
from runner.lerobot_adapter.remote_policy import ACTION_DIM_METADATA, WEIGHTS_METADATA


def _quiet_lerobot_loggers() -> None:
    """LeRobot's async-inference modules build their loggers at import with ``init_logging``, which resets
    the root logger and writes logs/ into the working directory; runner's run.log has them instead."""
    from lerobot.async_inference import helpers

    helpers.get_logger = lambda name, log_to_file=True: logging.getLogger(f"lerobot.{name}")


_quiet_lerobot_loggers()

from lerobot.async_inference.configs import PolicyServerConfig  # noqa: E402
from lerobot.async_inference.helpers import RemotePolicyConfig  # noqa: E402
from lerobot.async_inference.policy_server import PolicyServer  # noqa: E402
from lerobot.transport import services_pb2, services_pb2_grpc  # noqa: E402

log = logging.getLogger("runner.serve")


@dataclass
class ServedClient:
    peer: str
    connected_at: float
    handshake: str = "pending"  # accepted, or why it was refused
    observations: int = 0
    chunks: int = 0
    inference_s: list[float] = field(default_factory=list, repr=False)

    def record(self) -> dict[str, Any]:
        times = sorted(self.inference_s)
        return {
            "peer": self.peer, "connected_at": round(self.connected_at, 3), "handshake": self.handshake,
            "observations": self.observations, "chunks": self.chunks,
            "chunk_ms_p50": round(1000 * times[len(times) // 2], 2) if times else None,
        }  # fmt: skip


class GuardedPolicyServer(PolicyServer):
    """LeRobot's servicer with its policy fixed at start-up and the client's instructions checked."""

    def __init__(self, loaded: LoadedPolicy, fps: int, inference_latency_s: float, obs_queue_timeout_s: float):
        super().__init__(
            PolicyServerConfig(fps=fps, inference_latency=inference_latency_s, obs_queue_timeout=obs_queue_timeout_s)
        )
        self.policy_type, inputs = policy_type_and_inputs(loaded.folder)
        self.policy, self.preprocessor, self.postprocessor = loaded.policy, loaded.preprocessor, loaded.postprocessor
        self.device = str(loaded.policy.config.device)
        self.cameras = sorted(name.rsplit(".", 1)[-1] for name in inputs if name.startswith(IMAGES))
        self.state_dim = (inputs.get("observation.state") or [0])[0]
        self.action_dim = int(loaded.policy.config.output_features["action"].shape[0])
        self.weights_sha256 = weights_sha256(loaded.folder)
        self._fed_as = {model: fed for fed, model in renamed_inputs(loaded.folder).items()}
        self.clients: list[ServedClient] = []
        self._lock = threading.Lock()

    @property
    def policy_image_features(self):
        # LeRobot resizes each robot camera to the policy feature of the same name; a policy fine-tuned with
        # policy.camera_names reads its images under other names, which its own preprocessor renames.
        return {self._fed_as.get(name, name): feature for name, feature in self.policy.config.image_features.items()}

    def describe(self) -> str:
        article = "an" if self.policy_type[0] in "aeiou" else "a"
        cameras = ", ".join(self.cameras)
        sizes = f"state {self.state_dim}, action {self.action_dim}"
        return f"{article} {self.policy_type} policy with cameras [{cameras}], {sizes}"

    def _client(self, context) -> ServedClient:
        with self._lock:
            for client in reversed(self.clients):
                if client.peer == context.peer():
                    return client
            client = ServedClient(context.peer(), time.time())
            self.clients.append(client)
            return client

    def Ready(self, request, context):
        with self._lock:
            self.clients.append(ServedClient(context.peer(), time.time()))
        log.info("client %s connected", context.peer())
        return super().Ready(request, context)

    def SendPolicyInstructions(self, request, context):
        client = self._client(context)
        asked = pickle.loads(request.data)  # nosec B301: an authenticated client (see the module docstring)
        if not isinstance(asked, RemotePolicyConfig):
            client.handshake = f"refused: sent a {type(asked).__name__}, not policy instructions"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"runner serve: {client.handshake}")
        metadata = dict(context.invocation_metadata() or ())
        problems = self._mismatches(asked, metadata.get(ACTION_DIM_METADATA), metadata.get(WEIGHTS_METADATA))
        if problems:
            client.handshake = "refused: " + "; ".join(problems)
            log.warning("client %s refused at the handshake: %s", context.peer(), "; ".join(problems))
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"runner serve: this server serves {self.describe()}; the client {'; '.join(problems)}",
            )
        self.lerobot_features = asked.lerobot_features
        self.actions_per_chunk = asked.actions_per_chunk
        client.handshake = "accepted"
        log.info(
            "client %s: %d actions per chunk (it named %s; this server serves its own policy)",
            context.peer(), asked.actions_per_chunk, asked.pretrained_name_or_path,
        )  # fmt: skip
        return services_pb2.Empty()

    def _mismatches(self, asked: RemotePolicyConfig, action_dim: str | None, weights: str | None) -> list[str]:
        features = asked.lerobot_features or {}
        cameras = sorted(k.rsplit(".", 1)[-1] for k in features if k.startswith(IMAGES))
        state = features.get("observation.state", {}).get("shape", [0])
        problems = []
        if asked.policy_type != self.policy_type:
            problems.append(f"expects a {asked.policy_type} policy")
        if cameras != self.cameras:
            problems.append(f"has cameras [{', '.join(cameras)}]")
        if state and int(state[0]) != self.state_dim:
            problems.append(f"sends a state of {int(state[0])}")
        if action_dim is not None and int(action_dim) != self.action_dim:
            problems.append(f"commands {action_dim} joints")
        if weights and weights != self.weights_sha256:
            problems.append(f"evaluates other weights (sha256 {weights[:12]}, served {self.weights_sha256[:12]})")
        return problems

    def SendObservations(self, request_iterator, context):
        self._client(context).observations += 1
        return super().SendObservations(request_iterator, context)

    def GetActions(self, request, context):
        started = time.perf_counter()
        reply = super().GetActions(request, context)
        if getattr(reply, "data", b""):
            client = self._client(context)
            client.chunks += 1
            client.inference_s.append(time.perf_counter() - started)
        return reply


def start_server(
    servicer: GuardedPolicyServer,
    host: str,
    port: int,
    tls: tuple[bytes, bytes] | None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> tuple[grpc.Server, int]:
    """Bind and start; the port bound (port 0 picks a free one). ``tls``: (private key PEM, certificate PEM)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=list(interceptors))
    services_pb2_grpc.add_AsyncInferenceServicer_to_server(servicer, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls])) if tls else (
            server.add_insecure_port(address))  # fmt: skip
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(
            "serve.port", f"{address} could not be bound (in use, or not an address of this machine)",
            "pick another serve.port (0 picks a free one) or serve.host",
        )  # fmt: skip
    server.start()
    return server, bound
