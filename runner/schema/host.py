"""Schema of the host group: this machine's ports, cameras and SLURM cluster (a host profile)."""

from dataclasses import dataclass, field

from runner.schema.fields import bounded

# --- host --------------------------------------------------------------------------------------------


@dataclass
class ClusterConfig:
    """Where ``hydra/launcher=slurm`` submits (sbatch parameters, through Hydra's submitit launcher).

    Kept in the host profile so that an experiment never names a partition or an account.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    # Per job (one job = one run): GPUs on its node, CPUs for its task, memory in GB.
    gpus_per_node: int | None = bounded(None, ge=0)
    cpus_per_task: int | None = bounded(None, ge=1)
    mem_gb: int | None = bounded(None, ge=1)
    # The wall-time limit of one job (sbatch --time), in minutes.
    timeout_min: int = bounded(60, ge=1)
    # At most this many jobs of one sweep (one SLURM array) run at once.
    array_parallelism: int = bounded(16, ge=1)
    constraint: str | None = None
    # Shell lines the job runs before runner (module load, source .venv/bin/activate, ...).
    setup: list[str] = field(default_factory=list)
    # Any other sbatch option, by its long name without dashes, e.g. {mail-type: END}.
    additional_parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class HostConfig:
    """This machine's devices, kept out of experiments: role -> stable port or camera path; and its cluster."""

    name: str = "none"
    ports: dict[str, str] = field(default_factory=dict)
    cameras: dict[str, str] = field(default_factory=dict)
    calibration_dir: str | None = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
