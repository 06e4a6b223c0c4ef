"""The `runner` command line: help, dispatch, Hydra's own flags, completion, and import weight."""

import json
import os
import subprocess
import sys

import pytest
from conftest import PROBE, REPO, run_probe, run_runner

from runner.cli import COMMANDS, STAGES

HEAVY = ("torch", "lerobot", "mujoco", "cv2")


def test_help_lists_every_stage_and_command_with_one_line():
    result = run_runner("--help")
    assert result.returncode == 0
    for name in [*STAGES, *COMMANDS]:
        lines = [line for line in result.stdout.splitlines() if line.strip().startswith(name + " ")]
        assert len(lines) == 1, f"{name} should have exactly one help line"


def test_no_arguments_prints_usage_and_fails():
    result = run_runner()
    assert result.returncode == 2
    assert "usage: runner" in result.stdout


def test_unknown_command_suggests_the_nearest():
    result = run_runner("runz")
    assert result.returncode == 2
    assert "unknown stage or command 'runz'" in result.stderr
    assert "runner runs" in result.stderr


def test_console_script_and_module_agree():
    script = REPO / ".venv" / "bin" / "runner"
    module = run_runner("--version")
    assert module.returncode == 0 and module.stdout.startswith("runner ")
    if script.exists():
        assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout == module.stdout


def test_stage_hydra_flags(outputs_root):
    job = run_probe("--cfg", "job")
    assert job.returncode == 0
    assert "robot:" in job.stdout and "episode:" in job.stdout
    hydra = run_probe("--cfg", "hydra")
    assert hydra.returncode == 0 and "sweep:" in hydra.stdout
    info = run_probe("--info")
    assert info.returncode == 0 and "Defaults List" in info.stdout
    help_ = run_probe("--help")
    assert help_.returncode == 0 and "robot: sim_so101, so100_follower, so101_follower" in help_.stdout
    assert not outputs_root.exists(), "composing or printing must not create runs"


def test_shell_completion_of_stage_keys(outputs_root):
    env = {"COMP_LINE": "runner episode.f"}
    result = run_probe("-sc", "query=bash", env=env)
    assert result.returncode == 0
    assert "episode.fps=" in result.stdout.split()


def test_shell_completion_of_stage_and_command_names():
    result = run_runner("-sc", "query=bash", env={"COMP_LINE": "runner ru"})
    assert result.returncode == 0
    assert result.stdout.split() == ["runs"]


def _modules_after(code: str) -> set:
    probe = (
        "import sys, io, contextlib\n"
        f"sys.path.insert(0, {str(PROBE.parent)!r})\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + f"print(__import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_runs_and_composition_import_no_torch_or_lerobot(outputs_root):
    assert _modules_after("from runner.cli import main\nmain(['--help'])") == set()
    assert _modules_after("from runner.cli import main\nmain(['runs', '--json'])") == set()
    composed = (
        "from probe_stage import PROBE\nfrom runner.core.command_line import run_stage_cli\n"
        "run_stage_cli(PROBE, ['--cfg', 'job'])"
    )
    assert _modules_after(composed) == set()


def test_the_suite_starts_runner_as_a_fork_of_the_warm_server(outputs_root):
    """tests/warm_start.py must really be used: an environment difference that sends every start to a fresh
    interpreter (as PYTEST_CURRENT_TEST once did) costs the suite minutes and would pass unseen."""
    import warm_start

    if os.environ.get("RUNNER_TEST_COLD") == "1":
        pytest.skip("RUNNER_TEST_COLD=1 asks for fresh interpreters")
    result = run_runner("runs", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.args[:2] == [sys.executable, str(warm_start.RUNNER_MAIN)], "started in a fresh interpreter"
