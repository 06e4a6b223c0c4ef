"""Bad input fails at composition, before any run directory exists, in one paragraph naming the key."""

import pytest
from conftest import run_probe, run_runner

# The full corpus runs in-process (tests/schema/bad_inputs/, test_bad_inputs.py); these few check what only a real
# process shows: the exit code, one paragraph on stderr and no traceback. The last two are the schema's bounds.
CORPUS = [
    (["robot=so101_folower"], ["`robot=so101_folower`", "so101_follower", "Valid choices"]),
    (["episode.fpss=30"], ["`episode.fpss`", "Did you mean `episode.fps`", "Valid keys"]),
    (["episode.fps=5000"], ["`episode.fps`", "<= 1000"]),
    (["episode.episode_time_s=inf"], ["`episode.episode_time_s`", "not a finite number"]),
]


@pytest.mark.parametrize("overrides,words", CORPUS, ids=[" ".join(o) for o, _ in CORPUS])
def test_bad_config_fails_before_any_run_dir(overrides, words, outputs_root):
    result = run_probe(*overrides, "episode.reset_time_s=0")
    assert result.returncode == 2, result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("Config error")]
    assert len(message) == 1, result.stderr
    for word in words:
        assert word in message[0]
    assert "Traceback" not in result.stderr
    assert not outputs_root.exists() or not any(outputs_root.rglob("run.json")), "no run may be created"


def test_missing_value_in_a_section_the_stage_does_not_read_is_fine(outputs_root):
    """SmolVLA's model path is not needed to record: only the sections a stage reads must be complete."""
    result = run_probe("policy=smolvla", "episode.reset_time_s=0")
    assert result.returncode == 0, result.stderr


def test_config_error_a_stage_raises_is_one_paragraph_too(outputs_root):
    """A stage's own checks (here record's: nobody drives the arm) print the same one paragraph, exit 2."""
    result = run_runner("record", "teleop=none")
    assert result.returncode == 2, result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("Config error")]
    assert len(message) == 1 and "`teleop`" in message[0], result.stderr
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    assert not outputs_root.exists() or not any(outputs_root.rglob("run.json")), "no run may be created"
