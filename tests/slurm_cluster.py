"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd on this machine.

Everything lives in one temporary directory (munge key and socket, slurm.conf, spool, state, logs); the
daemons listen on free ports of 127.0.0.1, so a cluster already on this machine (or another test session's)
is left alone. Clients find this one through ``SLURM_CONF``, which every job inherits (sbatch exports the
whole environment). No accounting: sacct answers "accounting storage is disabled", as on many small clusters.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PARTITION = "runner-test"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
# Debian puts the daemons in /usr/sbin, which a non-login PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def unavailable(reason: str) -> None:
    """Skip where this machine cannot run a cluster, but fail in CI: a guarantee CI promises is never
    silently dropped."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _missing() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=SEARCH_PATH) is None]


def ensure_packages() -> dict[str, str]:
    """The path of every SLURM and munge program, installing slurm-wlm and munge with apt where they are
    missing and this process may (root, apt-get present)."""
    missing = _missing()
    if missing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            unavailable(f"{', '.join(missing)} not installed; `apt-get install slurm-wlm munge` needs root and apt")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:  # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or _missing():
            unavailable(f"apt-get install slurm-wlm munge failed: {done.stderr[-1500:]}")
    elif os.geteuid() != 0:
        unavailable("slurmd launches jobs only when it runs as root")
    return {name: str(shutil.which(name, path=SEARCH_PATH)) for name in (*DAEMONS, *CLIENTS)}


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; held open together so that the kernel hands out distinct ones."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _node_line(slurmd: str) -> str:
    """This node's hardware as slurmd itself detects it (name, CPUs, sockets, cores, memory): a slurm.conf
    that disagrees with it would drain the node."""
    detected = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=60, check=True).stdout
    [line] = [line for line in detected.splitlines() if line.startswith("NodeName=")]
    return line


@dataclass
class SlurmCluster:
    root: Path
    programs: dict[str, str]
    node: str = ""
    cpus: int = 0
    memory_mb: int = 0
    partition: str = PARTITION
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use this cluster: its slurm.conf, and the programs on PATH (submitit calls
        sbatch, squeue and srun by name)."""
        bin_dir = str(Path(self.programs["sbatch"]).parent)
        return {"SLURM_CONF": str(self.conf), "PATH": f"{os.environ.get('PATH', '')}{os.pathsep}{bin_dir}"}

    def command(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.programs[name], *args], env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=60, check=check)  # fmt: skip

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (only while slurmctld still holds the job: MinJobAge below)."""
        text = self.command("scontrol", "show", "job", "--oneliner", job_id).stdout
        return dict(re.findall(r"(\S+?)=(\S*)", text.splitlines()[0]))

    def states(self) -> dict[str, str]:
        """Every job slurmctld knows, finished ones included (kept MinJobAge seconds): id -> state. Array
        tasks are named <array job>_<task>."""
        text = self.command("squeue", "--states=all", "--noheader", "--array", "--format=%i %T").stdout
        return dict(line.split() for line in text.splitlines() if line.strip())

    def log(self, name: str) -> str:
        path = self.root / "log" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _start(self, name: str, *args: str) -> None:
        with open(self.root / "log" / f"{name}.out", "w") as out:
            self.processes[name] = subprocess.Popen([self.programs[name], *args], stdout=out,
                                                    stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                                    start_new_session=True)  # fmt: skip

    def _wait(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [name for name, process in self.processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}:\n{self.log(n)}{(self.root / 'log' / f'{n}.out').read_text()[-2000:]}"
                                 for n in self.processes)  # fmt: skip
                raise RuntimeError(f"SLURM test cluster: {what} not within {timeout:.0f} s "
                                   f"(ended: {', '.join(dead) or 'none'})\n{logs}")  # fmt: skip
            time.sleep(0.1)

    def start(self) -> None:
        for sub in ("munge", "spool", "state", "log"):
            (self.root / sub).mkdir(mode=0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        munge_socket = self.root / "munge" / "munge.socket"
        self._start("munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
                    f"--log-file={self.root / 'log' / 'munged.log'}", f"--pid-file={self.root / 'munge' / 'pid'}",
                    f"--seed-file={self.root / 'munge' / 'seed'}")  # fmt: skip
        self._wait(munge_socket.exists, "munged's socket")

        node = _node_line(self.programs["slurmd"])
        fields = dict(re.findall(r"(\w+)=(\S+)", node))
        self.node, self.cpus, self.memory_mb = fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])
        ctld_port, slurmd_port = _free_ports(2)
        root = self.root
        self.conf.write_text(f"""\
ClusterName=runnertest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
# No cgroups: this may be a container; linuxproc finds a job's processes by their parents.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# Memory is a consumable, so that mem_gb is a real request (and MinMemoryNode shows it).
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# Short timeouts: a test waits seconds, not minutes, for a dead daemon or a cancelled job.
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
KillWait=5
InactiveLimit=0
# Finished jobs stay visible to squeue/scontrol for the whole module (there is no sacct to ask).
MinJobAge=3600
{node.split(" UpTime=")[0]} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._start("slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_idle, f"node {self.node} idle in sinfo")

    def _node_idle(self) -> bool:
        done = self.command("sinfo", "--noheader", "--Node", "--format=%N %t", f"--partition={self.partition}",
                            check=False)  # fmt: skip
        return done.returncode == 0 and done.stdout.split() == [self.node, "idle"]

    def cancel_all(self, timeout: float = 60) -> None:
        """Cancel every job and wait until none runs, so that no job outlives its daemons."""
        self.command("scancel", f"--partition={self.partition}", check=False)
        live = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED")
        deadline = time.monotonic() + timeout
        while any(state in live for state in self.states().values()) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if "slurmd" in self.processes and self.processes["slurmd"].poll() is None:
                self.cancel_all()
        # Reverse order: slurmd reports to slurmctld, both authenticate through munged.
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


@contextlib.contextmanager
def running_cluster() -> Iterator[SlurmCluster]:
    """A started cluster, its node idle; stopped and its directory removed afterwards."""
    programs = ensure_packages()
    # Short and outside pytest's deep tmp tree: a unix socket path is limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="runner-slurm-"))
    root.chmod(0o755)  # munged wants every directory above its socket searchable
    cluster = SlurmCluster(root, programs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
