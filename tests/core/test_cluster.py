"""Scale-out: sweeps through Hydra's submitit launchers, SLURM parameters from the host profile, moved runs."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import REPO, run_dirs, run_probe, run_runner, start_probe

EVAL = ["experiment=sim_demo", "eval.n_episodes=1", "episode.episode_time_s=1", "eval.videos=0"]


def _sweep_runs(root: Path) -> list[dict]:
    """Each run's record, with the status `runner runs` shows (a dead process's run is `stale`)."""
    from runner.core import outputs

    return [run.record | {"status": run.status, "dir": run.path} for run in outputs.list_runs(root)]


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
def test_a_submitit_eval_sweep_is_three_runs_with_logs_and_compares_from_another_outputs_root(trained, tmp_path):
    before = set(run_dirs(trained))
    env = {"RUNNER_OUTPUTS": str(trained)}
    result = run_runner("eval", *EVAL, "-m", "hydra/launcher=submitit_local", "eval.checkpoint=2,4,last",
                        env=env, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(set(run_dirs(trained)) - before)
    assert len(runs) == 3
    sweep = runs[0].parent
    assert {r.parent for r in runs} == {sweep} and (sweep / "sweep.json").exists()
    job_ids, pids = set(), set()
    for run in runs:
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "succeeded" and record["sweep"]["id"] == sweep.name
        launcher = record["launcher"]
        assert launcher["name"] == "submitit_local"
        # Separate processes, each with its own submitit log, found from the run directory.
        assert (run / launcher["stdout"]).is_file()
        pids.add(record["process"]["pid"])
        assert f"eval run {run.name}" in (run / launcher["stderr"]).read_text()
        job_ids.add(launcher["job_id"])
    assert len(job_ids) == 3 and len(pids) == 3, "each job ran in a process of its own"
    steps = sorted(json.loads((r / "eval" / "metrics.json").read_text())["checkpoint_step"] for r in runs)
    assert steps == [2, 4, 4]

    compare = run_runner("compare", sweep.name, "--json", env=env)
    assert compare.returncode == 0, compare.stderr
    here = json.loads(compare.stdout)["rows"]
    assert len(here) == 3

    # Runs are self-describing: the sweep alone, copied under another root, still compares the same.
    elsewhere = tmp_path / "copied-outputs"
    shutil.copytree(sweep, elsewhere / "sim_demo" / sweep.name)
    moved = run_runner("compare", "--outputs", str(elsewhere), sweep.name, "--json", env={"RUNNER_OUTPUTS": ""})
    assert moved.returncode == 0, moved.stderr
    there = json.loads(moved.stdout)["rows"]
    key = ("run", "checkpoint_step", "success_rate", "n_episodes")
    assert [{k: r[k] for k in key} for r in there] == [{k: r[k] for k in key} for r in here]


def test_killing_a_submitit_job_then_resuming_submits_only_that_job(outputs_root):
    """The probe stage sleeps episode.reset_time_s: job 1 is still running when it is killed."""
    env = {"PYTHONPATH": str(REPO / "tests")}  # the submitit job process imports the probe stage
    process = start_probe("-m", "hydra/launcher=submitit_local", "episode.reset_time_s=0,6,0", env=env)
    deadline, victim = time.monotonic() + 120, None
    while victim is None and time.monotonic() < deadline:
        victim = next((r for r in _sweep_runs(outputs_root) if r["sweep"]["job"] == 1), None)
        time.sleep(0.1)
    assert victim is not None, "job 1 never started"
    os.kill(victim["process"]["pid"], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    sweep = victim["dir"].parent
    assert "ended without a result" in stderr and f"sweep.resume={sweep.name}" in stderr
    statuses = {r["sweep"]["job"]: r["status"] for r in _sweep_runs(outputs_root)}
    assert statuses == {0: "succeeded", 1: "stale", 2: "succeeded"}
    submitted = set((sweep / ".submitit").glob("*/*_submitted.pkl"))
    assert len(submitted) == 3

    resumed = run_probe(f"sweep.resume={sweep.name}", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "job 0 already succeeded: not launched again" in resumed.stderr
    assert "job 2 already succeeded: not launched again" in resumed.stderr
    assert len(set((sweep / ".submitit").glob("*/*_submitted.pkl")) - submitted) == 1  # one job resubmitted
    jobs = sorted((r["sweep"]["job"], r["status"]) for r in _sweep_runs(outputs_root))
    assert jobs == [(0, "succeeded"), (1, "stale"), (1, "succeeded"), (2, "succeeded")]


class _Submitted(Exception):
    """Raised instead of calling sbatch: the executor is caught just before submission."""


def test_the_slurm_launcher_submits_the_host_profiles_cluster_settings(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor

    from runner.core import conf
    from runner.schema import register_schemas

    register_schemas()
    monkeypatch.setenv("RUNNER_SWEEP_DIR", str(tmp_path / "sweep"))
    # No SLURM here: submitit only checks that `srun` exists before building its executor; it is never run.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf.CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["host=example", "hydra/launcher=slurm", "host.cluster.qos=high"],
                      return_hydra_config=True)  # fmt: skip
    GlobalHydra.instance().clear()
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda _: None, config=cfg)
    caught = []

    def submit_command(executor, command):
        caught.append((executor, command))
        raise _Submitted

    monkeypatch.setattr(SlurmExecutor, "_submit_command", submit_command)
    with pytest.raises(_Submitted):
        launcher.launch([["eval.checkpoint=2"], ["eval.checkpoint=4"], ["eval.checkpoint=6"]], initial_job_idx=0)
    [(executor, command)] = caught
    # submitit's own parameters for the array, as it would write them into the sbatch script.
    parameters = executor.parameters
    assert parameters["partition"] == "gpu" and parameters["account"] == "my-lab" and parameters["qos"] == "high"
    assert parameters["gpus_per_node"] == 1 and parameters["cpus_per_task"] == 8 and parameters["mem"] == "32GB"
    assert parameters["time"] == 240 and parameters["map_count"] == 3 and parameters["array_parallelism"] == 8
    assert parameters["setup"] == ["module load cuda/12.4", "source ~/runner/.venv/bin/activate"]
    script = executor._make_submission_file_text(command, "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=my-lab", "#SBATCH --array=0-2%3",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --time=240", "module load cuda/12.4"):  # fmt: skip
        assert line in script, script
    assert str(tmp_path / "sweep" / ".submitit") in str(executor.folder)


def test_resuming_a_sweep_with_every_job_done_launches_nothing(outputs_root):
    first = run_probe("-m", "episode.reset_time_s=0", "task.instruction=a,b")
    assert first.returncode == 0, first.stderr[-2000:]
    [sweep] = {d.parent.name for d in run_dirs(outputs_root)}
    again = run_probe(f"sweep.resume={sweep}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "job 1 already succeeded: not launched again" in again.stderr
    assert len(run_dirs(outputs_root)) == 2
