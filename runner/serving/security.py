"""What makes a policy server safe to reach: where it may bind, the client secret, and TLS.

LeRobot's async-inference protocol unpickles the bytes every client sends, so whoever can reach the port can
run code on the server's machine. runner's server therefore binds to loopback unless asked; off loopback it
needs TLS and a token, and the token is checked by a gRPC interceptor from the call's metadata, before any
request body is read: a refused call never reaches LeRobot's code, so its bytes are never unpickled.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from runner.core.errors import ConfigError

log = logging.getLogger("runner.serve")

AUTHORIZATION = "authorization"  # the metadata key a client puts its token under ("Bearer <token>")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def read_token(auth_env: str, auth_file: str | None) -> str | None:
    """The client secret from ``auth_file`` (its first line) or the environment variable ``auth_env``."""
    if auth_file:
        path = Path(auth_file).expanduser()
        if not path.is_file():
            raise ConfigError("serve.auth_file", f"is {auth_file}, which is not a file", "give the token file's path")
        token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() else ""
        if not token:
            raise ConfigError("serve.auth_file", f"is {auth_file}, which is empty", "write the token on its first line")
        return token
    return os.environ.get(auth_env) or None


def check_bind(host: str, tls: bool, token: str | None) -> None:
    """Off loopback, a server without both TLS and a token is refused before it binds."""
    if is_loopback(host):
        return
    missing = [what for what, present in (("serve.tls=true", tls), ("a token", token)) if not present]
    if missing:
        raise ConfigError(
            "serve.host",
            f"is {host}, reachable from other machines, without {' and '.join(missing)}: LeRobot's protocol "
            "unpickles what clients send, so anyone on that network could run code on this machine",
            "set serve.tls=true and a token (export RUNNER_SERVE_TOKEN=... or serve.auth_file=PATH), or keep "
            "serve.host=127.0.0.1 and reach it through an SSH tunnel (README: Policy on another machine)",
        )


@dataclass
class TLSIdentity:
    certificate: bytes  # PEM, given to clients
    private_key: bytes  # PEM, held in memory (a self-signed one is never written)
    fingerprint: str  # sha256 of the certificate (DER), as `openssl x509 -fingerprint -sha256` prints it


def self_signed(host: str, days: int = 30) -> TLSIdentity:
    """A fresh EC P-256 key and a certificate for ``host``, localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        address = ipaddress.ip_address(host)
        if not address.is_unspecified and not address.is_loopback:
            names.append(x509.IPAddress(address))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runner policy server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TLSIdentity(pem, key_pem, fingerprint(pem))


def from_files(cert: str, key: str) -> TLSIdentity:
    for name, path in (("serve.tls_cert", cert), ("serve.tls_private", key)):
        if not Path(path).expanduser().is_file():
            raise ConfigError(
                name, f"is {path}, which is not a file", "give a PEM file, or neither for a self-signed one"
            )
    pem = Path(cert).expanduser().read_bytes()
    return TLSIdentity(pem, Path(key).expanduser().read_bytes(), fingerprint(pem))


def fingerprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class TokenInterceptor(grpc.ServerInterceptor):
    """Lets a call through only when its metadata carries the token; any other call is answered
    UNAUTHENTICATED by a handler that never reads the request, so LeRobot's servicer never sees its bytes."""

    def __init__(self, token: str, on_refused: Callable[[str, str], None]) -> None:
        self._expected = f"Bearer {token}".encode()
        self._on_refused = on_refused

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get(AUTHORIZATION, "")).encode()
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        method = handler_call_details.method
        reason = "no token" if not given else "a wrong token"

        def refuse(_request_bytes, context: grpc.ServicerContext):
            self._on_refused(context.peer(), f"{method}: {reason}")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"runner serve: refused ({reason})")

        # No request_deserializer: grpc hands the refusal raw bytes (or their iterator), which it ignores.
        if method.endswith("/SendObservations"):
            return grpc.stream_unary_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


class _ClientToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._metadata = (AUTHORIZATION, f"Bearer {token}")

    def _with_token(self, details):
        metadata = [*(details.metadata or ()), self._metadata]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, details, metadata) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


def client_channel(
    address: str, certificate: bytes | None = None, token: str | None = None, options: tuple = ()
) -> grpc.Channel:
    """A channel to a runner policy server: TLS when given its certificate, the token on every call."""
    if certificate is not None:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=certificate), options)
    else:
        channel = grpc.insecure_channel(address, options)
    return grpc.intercept_channel(channel, _ClientToken(token)) if token else channel
