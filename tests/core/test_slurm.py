"""`-m hydra/launcher=slurm` against a real SLURM cluster on this machine (slurm_cluster.py): arrays, the host
profile's cluster settings, scancel and sweep.resume, eval and train jobs, and what the console shows.

The cluster settings are given as ``host.cluster.*`` overrides: the keys a host profile fills (conf/host/
example.yaml), reaching the same node of the config. A profile file would have to live in conf/host/ of
this checkout, where every other test running at the same time would see it.
"""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, TINY_ACT, run_probe, run_runner, start_probe, wait_until
from slurm_cluster import SlurmCluster, running_cluster

pytestmark = pytest.mark.alone  # daemons of its own, and jobs that must start and end on time

PROBE_ENV = {"PYTHONPATH": str(REPO / "tests")}  # each SLURM job unpickles a task that imports the probe stage
EVAL = ["experiment=sim_demo", "eval.n_episodes=1", "episode.episode_time_s=1", "eval.videos=0"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    with running_cluster() as started:
        yield started


def _on(cluster: SlurmCluster, cpus: int = 1, mem_gb: int = 1, timeout_min: int = 10) -> list[str]:
    """A sweep on the test cluster, with what a host profile's ``cluster:`` section would hold."""
    return ["-m", "hydra/launcher=slurm", f"host.cluster.partition={cluster.partition}",
            f"host.cluster.cpus_per_task={cpus}", f"host.cluster.mem_gb={mem_gb}",
            f"host.cluster.timeout_min={timeout_min}"]  # fmt: skip


def _env(cluster: SlurmCluster, outputs: Path, **extra: str) -> dict[str, str]:
    return {**cluster.env, "RUNNER_OUTPUTS": str(outputs), **extra}


def _probe_sweep(cluster: SlurmCluster, root: Path, *overrides: str, **settings: int):
    """A probe-stage sweep on the test cluster that must succeed; its finished process."""
    result = run_probe(*_on(cluster, **settings), *overrides, env=_env(cluster, root, **PROBE_ENV), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _runs(root: Path, stage: str | None = None) -> list[dict]:
    from runner.core import outputs

    return [run.record | {"status": run.status, "dir": run.path} for run in outputs.list_runs(root)
            if stage is None or run.record.get("stage") == stage]  # fmt: skip


def _check_one_array(cluster: SlurmCluster, runs: list[dict], n_jobs: int) -> str:
    """Every run of the sweep is a task of the same SLURM array, task number = sweep job number."""
    assert len(runs) == n_jobs
    arrays = {run["launcher"]["array_job_id"] for run in runs}
    assert len(arrays) == 1, f"one array per sweep, got {arrays}"
    [array] = arrays
    for run in runs:
        launcher = run["launcher"]
        assert run["status"] == "succeeded"
        assert launcher["name"] == "submitit_slurm" and launcher["partition"] == cluster.partition
        assert launcher["array_task_id"] == str(run["sweep"]["job"])
        assert launcher["job_id"] == f"{array}_{launcher['array_task_id']}"
        assert launcher["hostname"] == cluster.node
        assert (run["dir"] / launcher["stderr"]).is_file(), "the job's SLURM log, found from the run directory"
    assert len({run["launcher"]["slurm_job_id"] for run in runs}) == n_jobs, "each task is a SLURM job of its own"
    # submitit returns once each result file is written; slurmd reports a job's end a moment later.
    ids = [run["launcher"]["job_id"] for run in runs]
    wait_until(lambda: {cluster.states().get(i) for i in ids} == {"COMPLETED"}, "every task COMPLETED", 60)
    return array


@pytest.mark.slow
def test_a_probe_sweep_is_one_slurm_array_and_each_run_records_its_job(cluster, tmp_path):
    root = tmp_path / "outputs"
    _probe_sweep(cluster, root, "episode.reset_time_s=0", "task.instruction=a,b,c")
    runs = _runs(root)
    array = _check_one_array(cluster, runs, 3)
    sweep = runs[0]["dir"].parent
    assert {run["dir"].parent for run in runs} == {sweep}
    script = (sweep / ".submitit" / array / f"{array}_submission.sh").read_text()
    assert "#SBATCH --array=0-2%" in script, script
    assert sorted((run["dir"] / "probe.txt").read_text() for run in runs) == ["a", "b", "c"]


@pytest.mark.slow
def test_the_host_profiles_cluster_settings_reach_the_slurm_job(cluster, tmp_path):
    root = tmp_path / "outputs"
    cpus = min(2, cluster.cpus)
    _probe_sweep(cluster, root, "episode.reset_time_s=0", cpus=cpus, mem_gb=1, timeout_min=7)
    [run] = _runs(root)
    job = cluster.job(run["launcher"]["job_id"])
    assert job["Partition"] == cluster.partition
    assert job["CPUs/Task"] == str(cpus) and job["NumCPUs"] == str(cpus)
    assert job["MinMemoryNode"] == "1G"
    assert job["TimeLimit"] == "00:07:00"
    # As above: the clean-clone CI saw RUNNING here on a loaded machine.
    wait_until(lambda: cluster.job(run["launcher"]["job_id"])["JobState"] == "COMPLETED", "the job COMPLETED", 60)


@pytest.mark.slow
def test_scancel_of_one_job_then_resuming_the_sweep_submits_only_that_job(cluster, tmp_path):
    """The probe sleeps episode.reset_time_s: job 1 still runs when it is cancelled, jobs 0 and 2 finish. The
    resumed sweep replays the same arguments, so job 1 sleeps as long again."""
    root = tmp_path / "outputs"
    env = _env(cluster, root, **PROBE_ENV)
    process = start_probe(*_on(cluster), "episode.reset_time_s=0,20,0", env=env)
    victim: list[dict] = []

    def job_1_runs() -> bool:
        victim[:] = [r for r in _runs(root) if r["sweep"]["job"] == 1 and r.get("launcher")]
        return bool(victim) and cluster.states().get(victim[0]["launcher"]["job_id"]) == "RUNNING"

    try:
        wait_until(job_1_runs, "job 1 running on SLURM", timeout=120, process=process)
        [run] = victim
        cluster.command("scancel", run["launcher"]["job_id"])
        _, stderr = process.communicate(timeout=120)  # never ends when no job state reaches submitit
    finally:
        if process.poll() is None:  # a sweep still waiting: not left behind for the next test
            process.kill()
            process.communicate()
    assert process.returncode == 1, stderr[-3000:]
    sweep = run["dir"].parent
    assert "ended without a result" in stderr and f"sweep.resume={sweep.name}" in stderr
    assert cluster.states()[run["launcher"]["job_id"]] == "CANCELLED"
    statuses = {r["sweep"]["job"]: r["status"] for r in _runs(root)}
    assert statuses[0] == statuses[2] == "succeeded" and statuses[1] != "succeeded"
    submitted = set((sweep / ".submitit").glob("*/*_submitted.pkl"))
    assert len(submitted) == 3

    resumed = run_probe(f"sweep.resume={sweep.name}", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "job 0 already succeeded: not launched again" in resumed.stderr
    assert "job 2 already succeeded: not launched again" in resumed.stderr
    [new] = set((sweep / ".submitit").glob("*/*_submitted.pkl")) - submitted  # one job resubmitted
    again = [r for r in _runs(root) if r["sweep"]["job"] == 1 and r["status"] == "succeeded"]
    assert len(again) == 1 and again[0]["launcher"]["array_job_id"] != run["launcher"]["array_job_id"]
    assert new.parent.name == again[0]["launcher"]["job_id"]


@pytest.mark.slow
def test_the_console_says_once_that_the_cluster_has_no_accounting(cluster, tmp_path):
    """Without accounting every sacct poll fails; the console must not repeat that for each poll."""
    root = tmp_path / "outputs"
    # Long enough for submitit to poll several times (it polls at 2, 4, 8 s ... after submission).
    result = _probe_sweep(cluster, root, "episode.reset_time_s=12", "task.instruction=a,b")
    console = result.stdout + result.stderr
    assert console.count("Slurm accounting storage is disabled") <= 1, console[-3000:]
    assert console.count("Bypassing sacct error") <= 1, console[-3000:]
    assert "accounting" in console.lower(), "the console says once that job states come without sacct"


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
def test_an_eval_sweep_over_checkpoints_runs_as_one_slurm_array(cluster, trained):
    before = {r["dir"] for r in _runs(trained)}
    result = run_runner("eval", *EVAL, *_on(cluster, mem_gb=2), "eval.checkpoint=2,4",
                        env=_env(cluster, trained), timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [r for r in _runs(trained, "eval") if r["dir"] not in before]
    _check_one_array(cluster, runs, 2)
    steps = sorted(json.loads((r["dir"] / "eval" / "metrics.json").read_text())["checkpoint_step"] for r in runs)
    assert steps == [2, 4]


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
def test_a_train_sweep_runs_on_slurm(cluster, trained, tmp_path):
    # a root of its own: the robot sessions evaluate the latest train run of `trained`, which must stay the fixture's
    root = tmp_path / "outputs"
    [record] = [r["dir"] for r in _runs(trained, "record")]
    shutil.copytree(record, root / record.relative_to(trained))
    result = run_runner("train", "experiment=sim_demo", *_on(cluster, mem_gb=2), "train.steps=2",
                        "train.save_freq=2", "train.batch_size=2", "train.num_workers=0", *TINY_ACT,
                        "train.seed=1,2", env=_env(cluster, root), timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(root, "train")
    _check_one_array(cluster, runs, 2)
    for run in runs:
        assert (run["dir"] / "train" / "checkpoints" / "000002" / "pretrained_model").is_dir(), run["dir"]
