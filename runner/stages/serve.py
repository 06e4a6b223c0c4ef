"""``runner serve``: a policy server on the machine with the GPU, for a robot driven from another machine.

The protocol is LeRobot's async inference (a gRPC ``PolicyServer``: observations in, action chunks out);
runner sets up the server around it. It binds to 127.0.0.1 unless ``serve.host`` says otherwise, and any
other address needs TLS and a client token, because LeRobot's protocol unpickles what clients send. The
policy is a train run's checkpoint or a policy folder, loaded once; a client expecting another policy
type, camera set or action size is refused at the handshake. The run records the address bound, the TLS
fingerprint, where the token came from (never the token), the policy and every client served. It serves
until Ctrl-C or SIGTERM, which end the run as succeeded.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from omegaconf import DictConfig

from runner.core.context import StageContext
from runner.core.errors import ConfigError

log = logging.getLogger("runner.serve")

CERTIFICATE = "serve/server.crt"  # the certificate clients verify the server with (never the key)
CLIENTS_SAVE_S = 5.0  # how often run.json's list of clients is brought up to date


def _policy(cfg: DictConfig, ctx: StageContext) -> tuple[Path, str | None, int | None]:
    from runner.hub.refs import policy_folder
    from runner.lerobot_adapter.checkpoints import PRETRAINED, checkpoint_step, train_checkpoints

    if cfg.serve.policy_path:
        folder, _ = policy_folder(cfg.serve.policy_path, "serve.policy_path")
        return folder, None, None
    train, available = train_checkpoints(ctx.outputs_root, str(cfg.policy_run))
    step = checkpoint_step(str(cfg.serve.checkpoint), available, train.id, key="serve.checkpoint")
    return available[step] / PRETRAINED, train.id, step


def serve(cfg: DictConfig, ctx: StageContext) -> dict:
    from runner.lerobot_adapter import evaluation
    from runner.lerobot_adapter.training import resolve_device
    from runner.serving import security

    settings = cfg.serve
    token = security.read_token(settings.auth_env, settings.auth_file)
    if token:
        ctx.redactor.add_values([token])
    security.check_bind(settings.host, settings.tls, token)
    if bool(settings.tls_cert) != bool(settings.tls_private):
        raise ConfigError("serve.tls_cert", "and serve.tls_private come together", "give both files, or neither")
    if settings.tls_cert and not settings.tls:
        raise ConfigError("serve.tls_cert", "is set while serve.tls=false", "set serve.tls=true, or drop the files")
    identity = None
    if settings.tls:
        identity = (security.from_files(settings.tls_cert, settings.tls_private) if settings.tls_cert
                    else security.self_signed(settings.host))  # fmt: skip
    folder, policy_run, step = _policy(cfg, ctx)
    device = resolve_device(settings.device.value, "serve.device")

    from runner.lerobot_adapter.policy_server import GuardedPolicyServer, start_server

    run = ctx.start_run(parents=[policy_run] if policy_run else [])
    servicer = GuardedPolicyServer(
        evaluation.load_policy(folder, device), cfg.episode.fps, settings.inference_latency_s,
        settings.obs_queue_timeout_s,
    )  # fmt: skip
    interceptors = [security.TokenInterceptor(token, _log_refusal)] if token else []
    server, port = start_server(
        servicer, settings.host, settings.port,
        (identity.private_key, identity.certificate) if identity else None, interceptors,
    )  # fmt: skip
    address = f"{settings.host}:{port}"
    tls = None
    if identity is not None:
        (run.dir / CERTIFICATE).parent.mkdir(exist_ok=True)
        (run.dir / CERTIFICATE).write_bytes(identity.certificate)
        run.add_artifact(CERTIFICATE)
        tls = {"certificate": CERTIFICATE, "sha256_fingerprint": identity.fingerprint,
               "self_signed": not settings.tls_cert}  # fmt: skip
    auth = None
    if token:
        source = f"file {settings.auth_file}" if settings.auth_file else f"${settings.auth_env}"
        auth = {"required": True, "from": source}
    record = {
        "address": address, "tls": tls, "auth": auth, "device": device,
        "policy": {"run": policy_run, "checkpoint_step": step, "path": str(folder), "type": servicer.policy_type,
                   "cameras": servicer.cameras, "state_dim": servicer.state_dim, "action_dim": servicer.action_dim},
        "clients": [],
    }  # fmt: skip
    run.update(serve=record)
    print(f"runner serve: {servicer.describe()} on {address}"
          + (f" · TLS sha256 {identity.fingerprint} (certificate: {run.dir / CERTIFICATE})" if identity else "")
          + (" · token required" if token else ""), file=sys.stderr, flush=True)  # fmt: skip
    log.info("serving %s on %s (Ctrl-C stops)", folder, address)
    stopped = threading.Event()
    try:
        while not stopped.wait(CLIENTS_SAVE_S):
            run.update(serve=record | {"clients": [c.record() for c in servicer.clients]})
    except KeyboardInterrupt as interrupt:
        log.info("stopping: %s", interrupt or "Ctrl-C")
    finally:
        servicer.stop()
        server.stop(grace=1.0).wait()
        record["clients"] = [c.record() for c in servicer.clients]
        run.update(serve=record)
    return {"address": address, "clients": len(record["clients"])}


def _log_refusal(peer: str, why: str) -> None:
    log.warning("refused %s before reading its request: %s", peer, why)
