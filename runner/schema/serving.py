"""Schema of the serve group: a policy server for a robot on another machine (``runner serve``)."""

from dataclasses import dataclass

from runner.schema.fields import Device, bounded


@dataclass
class ServeConfig:
    # The address the server binds. Loopback unless you ask: any other address needs tls=true and a token.
    host: str = "127.0.0.1"
    # 0 picks a free port; the address bound is printed and kept in run.json (serve.address).
    port: int = bounded(8080, ge=0, le=65535)
    # The policy served: a checkpoint of the train run policy_run= names (a step or last), or, instead, any
    # LeRobot policy folder or Hub model repo (hf:OWNER/NAME[@REVISION]) in policy_path.
    checkpoint: str = "last"
    policy_path: str | None = None
    device: Device = Device.auto
    # Transport security. With tls and no files, a self-signed certificate is made for this run: its
    # fingerprint is printed and the certificate (never the key) saved as serve/server.crt for clients.
    tls: bool = False
    tls_cert: str | None = None
    tls_private: str | None = None
    # The client secret: clients send it with every call, checked before a request's bytes are read. Read
    # from this environment variable, or from auth_file (a login file, one line); never written anywhere.
    auth_env: str = "RUNNER_SERVE_TOKEN"
    auth_file: str | None = None
    # LeRobot's PolicyServerConfig: the least time one action chunk takes to return (LeRobot's 1/30 s) and
    # how long a chunk request waits for an observation before answering empty.
    inference_latency_s: float = bounded(1 / 30, ge=0)
    obs_queue_timeout_s: float = bounded(2.0, gt=0)
