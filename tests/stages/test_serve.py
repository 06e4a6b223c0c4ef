"""`runner serve`: LeRobot's policy server behind runner's gRPC set-up, spoken to with LeRobot's own protocol
(its message classes, its chunked observation stream), from the socket up."""

import ipaddress
import json
import math
import pickle
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import REPO, run_dirs, run_runner, start_runner, start_server, stop_server
from lerobot.async_inference.helpers import RemotePolicyConfig, TimedObservation
from lerobot.transport import services_pb2, services_pb2_grpc
from lerobot.transport.utils import send_bytes_in_chunks

from runner.serving.security import client_channel

pytestmark = pytest.mark.xdist_group("trained")
TOKEN = "serveToken_3f9a61c2d8"


class _WritesAFile:
    """A pickle that creates a file when it is loaded: proof of whether the server unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port``, read from the kernel's tables (an IPv6 socket
    bound to an IPv4-mapped address is shown as the IPv4 address)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            hex_address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8))
            address = ipaddress.ip_address(raw)
            mapped = getattr(address, "ipv4_mapped", None)
            found.append(str(mapped or address))
    return found


def _features(trained: Path, drop_camera: bool = False) -> tuple[dict, list[str], list[str]]:
    """The recording's observation features in LeRobot's dataset form (what its robot client sends)."""
    [info] = trained.rglob("dataset/meta/info.json")
    features = json.loads(info.read_text())["features"]
    joints = features["observation.state"]["names"]
    cameras = sorted(k.rsplit(".", 1)[-1] for k in features if k.startswith("observation.images."))
    if drop_camera:
        cameras = cameras[:-1]
    sent = {"observation.state": {"dtype": "float32", "shape": (len(joints),), "names": joints}}
    for role in cameras:
        shape = features[f"observation.images.{role}"]["shape"]
        sent[f"observation.images.{role}"] = {"dtype": "image", "shape": tuple(shape), "names": None}
    return sent, joints, cameras


def _handshake(stub, features: dict, metadata=()) -> None:
    stub.Ready(services_pb2.Empty(), metadata=metadata)
    instructions = RemotePolicyConfig("act", "named-by-the-client", features, 5, "cpu")
    stub.SendPolicyInstructions(services_pb2.PolicySetup(data=pickle.dumps(instructions)), metadata=metadata)


def _one_chunk(stub, features: dict, joints: list[str], cameras: list[str], metadata=()):
    observation = {joint: 0.0 for joint in joints} | {"task": "pick"}
    for role in cameras:
        height, width, _ = features[f"observation.images.{role}"]["shape"]
        observation[role] = np.zeros((height, width, 3), dtype=np.uint8)
    timed = TimedObservation(timestamp=time.time(), observation=observation, timestep=0, must_go=True)
    stub.SendObservations(send_bytes_in_chunks(pickle.dumps(timed), services_pb2.Observation), metadata=metadata)
    return pickle.loads(stub.GetActions(services_pb2.Empty(), metadata=metadata).data)


@pytest.mark.slow
def test_default_server_listens_on_loopback_only_and_checks_the_handshake(trained, tmp_path):
    outputs = tmp_path / "outputs"
    process, host, port = start_server(outputs, f"policy_run={_train_run(trained)}", f"paths.outputs={trained}")
    try:
        assert host == "127.0.0.1"
        assert _listening(port) == ["127.0.0.1"], "the server must listen on IPv4 loopback only"
        stub = services_pb2_grpc.AsyncInferenceStub(grpc.insecure_channel(f"{host}:{port}"))
        features, joints, cameras = _features(trained)
        wrong, _, _ = _features(trained, drop_camera=True)
        with pytest.raises(grpc.RpcError) as refused:
            _handshake(stub, wrong)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        detail = refused.value.details()
        assert f"cameras [{', '.join(cameras)}]" in detail, detail
        assert f"the client has cameras [{', '.join(cameras[:-1])}]" in detail, detail
        _handshake(stub, features)
        chunk = _one_chunk(stub, features, joints, cameras)
        assert len(chunk) == 5 and chunk[0].get_action().shape == (len(joints),)
        assert [a.get_timestep() for a in chunk] == [0, 1, 2, 3, 4]
    finally:
        stop_server(process)
    record = json.loads((_serve_run(trained, port) / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert record["serve"]["address"] == f"127.0.0.1:{port}" and record["serve"]["tls"] is None
    handshakes = [c["handshake"] for c in record["serve"]["clients"]]
    assert handshakes[0].startswith("refused: has cameras") and handshakes[-1] == "accepted"
    assert record["serve"]["clients"][-1]["chunks"] == 1


def _serve_run(outputs: Path, port: int) -> Path:
    """The serve run that bound ``port``."""
    for run in run_dirs(outputs):
        record = json.loads((run / "run.json").read_text())
        if record["stage"] == "serve" and record.get("serve", {}).get("address", "").endswith(f":{port}"):
            return run
    raise AssertionError(f"no serve run bound port {port}")


def _train_run(trained: Path) -> str:
    [train] = [d for d in run_dirs(trained) if json.loads((d / "run.json").read_text())["stage"] == "train"]
    return train.name


def test_a_public_address_without_tls_and_token_is_refused_before_anything_runs(tmp_path):
    outputs = tmp_path / "outputs"
    result = run_runner("serve", "serve.host=0.0.0.0", env={"RUNNER_OUTPUTS": str(outputs)})
    assert result.returncode != 0
    assert "serve.host" in result.stderr and "serve.tls=true and a token" in result.stderr
    result = run_runner("serve", "serve.host=0.0.0.0", "serve.tls=true", env={"RUNNER_OUTPUTS": str(outputs)})
    assert result.returncode != 0 and "without a token" in result.stderr
    assert not outputs.exists() or not run_dirs(outputs)


@pytest.mark.slow
def test_tls_and_token_refuse_a_client_before_its_bytes_are_unpickled(trained, tmp_path):
    env = {"RUNNER_SERVE_TOKEN": TOKEN}
    process, _, port = start_server(
        tmp_path, f"policy_run={_train_run(trained)}", f"paths.outputs={trained}", "serve.host=0.0.0.0",
        "serve.tls=true", env=env,
    )  # fmt: skip
    proof = tmp_path / "unpickled"
    try:
        run = _serve_run(trained, port)
        certificate = (run / "serve" / "server.crt").read_bytes()
        address = f"127.0.0.1:{port}"
        payload = services_pb2.PolicySetup(data=pickle.dumps(_WritesAFile(proof)))
        for token in (None, "not-the-token"):
            stub = services_pb2_grpc.AsyncInferenceStub(client_channel(address, certificate, token))
            with pytest.raises(grpc.RpcError) as refused:
                stub.SendPolicyInstructions(payload)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert not proof.exists(), "a refused client's bytes were unpickled"
        with pytest.raises(grpc.RpcError) as plain:  # TLS is on: a plaintext client never gets a reply
            services_pb2_grpc.AsyncInferenceStub(grpc.insecure_channel(address)).Ready(services_pb2.Empty(), timeout=5)
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
        stub = services_pb2_grpc.AsyncInferenceStub(client_channel(address, certificate, TOKEN))
        features, joints, cameras = _features(trained)
        _handshake(stub, features)
        assert len(_one_chunk(stub, features, joints, cameras)) == 5
    finally:
        log = stop_server(process)
    record = json.loads((run / "run.json").read_text())
    assert record["serve"]["auth"] == {"required": True, "from": "$RUNNER_SERVE_TOKEN"}
    openssl = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=certificate,
                             capture_output=True, check=True)  # fmt: skip
    assert openssl.stdout.decode().strip().split("=")[1] == record["serve"]["tls"]["sha256_fingerprint"]
    assert "refused" in log
    assert "refused" in (run / "run.log").read_text()
    assert not (REPO / "logs").exists(), "LeRobot's own log files must not appear in the working directory"
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token was written to {path}"


def _episodes(run: Path) -> list[dict]:
    import csv

    with open(run / "eval" / "episodes.csv") as table:
        return list(csv.DictReader(table))


def _last_eval(root: Path) -> Path:
    return max((d for d in run_dirs(root) if "-eval-" in d.name), key=lambda d: d.name)


@pytest.mark.slow
def test_remote_eval_matches_local_inference_and_survives_a_server_killed_mid_episode(trained, tmp_path):
    """With a new chunk asked only when the queue is empty and chunks as long as the policy's own, the remote
    policy acts exactly as the local one: the same actions on the same observations, so the same episodes.
    The server is killed during episode 2 and started again: episode 2 is aborted (not scored) with the arm
    stopped within eval.stale_action_s, episode 1 stays scored, and the session reconnects and finishes."""
    common = ["experiment=sim_demo", "eval.checkpoint=last", "eval.n_episodes=3", "episode.episode_time_s=2",
              "eval.videos=0", f"policy_run={_train_run(trained)}"]  # fmt: skip
    env = {"RUNNER_OUTPUTS": str(trained)}
    local = run_runner("eval", *common, env=env, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    local_run = _last_eval(trained)
    # 0.3 s per chunk of 5 actions: an episode of 20 steps lasts over a second, long enough to be killed in.
    serving = [f"policy_run={_train_run(trained)}", f"paths.outputs={trained}", "serve.inference_latency_s=0.3"]
    server, host, port = start_server(trained, *serving)
    remote = start_runner(
        "eval", *common, "eval.inference=remote", f"eval.server={host}:{port}", "eval.chunk_size_threshold=0",
        "eval.actions_per_chunk=5", "eval.stale_action_s=1", "eval.reconnect_s=120", env=env,
    )  # fmt: skip
    log: list[str] = []
    try:
        for line in remote.stderr:
            log.append(line)
            if "episode 1/3" in line:
                server.kill()
                server.wait(timeout=30)
            if "Waiting up to" in line:
                server, _, _ = start_server(trained, *serving, port=port)
        remote.wait(timeout=300)
    finally:
        remote.kill()
        if server.poll() is None:
            stop_server(server)
    output = "".join(log)
    assert remote.returncode == 0, output[-3000:]
    assert "episode 2 aborted, not scored" in output and f"reconnected to {host}:{port}" in output, output[-3000:]
    remote_run = _last_eval(trained)
    rows = _episodes(remote_run)
    [aborted] = [row for row in rows if row["status"] == "aborted"]
    assert aborted["episode"] == "1" and aborted["success"] == "" and int(aborted["steps"]) < 20
    assert float(aborted["stopped_after_s"]) <= 1 + 0.5, "the arm went without actions longer than the timeout"
    scored = [row for row in rows if row["status"] == "scored"]
    assert rows[0]["status"] == "scored" and rows[0]["episode"] == "0", "the episode before the loss stays scored"
    assert [(e["seed"], e["success"], e["steps"], e["sum_reward"]) for e in _episodes(local_run)] == [
        (e["seed"], e["success"], e["steps"], e["sum_reward"]) for e in scored
    ]
    for episode in scored:  # lockstep: every chunk is asked for on an empty queue, one underrun each
        assert int(episode["underruns"]) == math.ceil(int(episode["steps"]) / 5)
        assert float(episode["latency_ms_p50"]) >= float(episode["chunk_rtt_ms_p50"]) > 0
    metrics = json.loads((remote_run / "eval" / "metrics.json").read_text())
    assert metrics["inference"] == "remote" and metrics["n_episodes"] == 3 and metrics["control_hz"] > 0
    assert [a["episode"] for a in metrics["aborted_episodes"]] == [1]
    compared = run_runner("compare", local_run.name, remote_run.name, "--json", env=env)
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = {row["inference"]: row for row in json.loads(compared.stdout)["rows"]}
    assert rows["local"]["latency_ms_p50"] is None and rows["remote"]["underruns"] == metrics["underruns"]
    assert rows["remote"]["success_rate"] == rows["local"]["success_rate"] and rows["remote"]["comparable"]
