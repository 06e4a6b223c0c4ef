"""The bad-input corpus (tests/schema/bad_inputs/): every case is refused before anything is written, naming the key.

Cases run in-process through `runner.cli.main` (the same code path as the console script, a second apart
instead of a fresh interpreter each), plus property-based fuzzing of overrides with hypothesis.
"""

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, FakeHub, run_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS_DIR = REPO / "tests" / "schema" / "bad_inputs"


def _load_cases() -> list[dict]:
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        for index, case in enumerate(yaml.safe_load(path.read_text())):
            cases.append(case | {"id": f"{path.stem}-{index}-{' '.join([case['stage'], *case['args']])[:60]}"})
    return cases


CASES = _load_cases()


def _fake_record_run(root: Path, run_id: str = "20261124-000000-000-record-fake", fps: int = 10,
                     cameras: tuple[str, ...] = ("side",), scenarios: tuple[str, ...] = ()) -> None:  # fmt: skip
    """A record run as train and `runner dataset` read it: dataset metadata, and runner's episode table when
    ``scenarios`` (one per episode) are given; no frames."""
    meta = root / "default" / run_id / "dataset" / "meta"
    meta.mkdir(parents=True)
    features = {f"observation.images.{role}": {"dtype": "video", "shape": [96, 128, 3]} for role in cameras}
    features["action"] = {"dtype": "float32", "shape": [6]}
    info = {"fps": fps, "robot_type": "sim_so101", "total_episodes": max(1, len(scenarios)), "features": features}
    (meta / "info.json").write_text(json.dumps(info))
    if scenarios:
        header = "dataset_episode,kept,scenario,instruction,success"
        rows = [f"{i},True,{name},pick up the cube,False" for i, name in enumerate(scenarios)]
        (meta / "runner_episodes.csv").write_text("\n".join([header, *rows]))
    (meta.parent.parent / "run.json").write_text(json.dumps({"id": run_id, "stage": "record", "status": "succeeded"}))


def _fake_datasets(root: Path) -> None:
    """Three record runs for `runner dataset`: the latest (3 episodes of two scenarios), one at another fps,
    one with another camera set."""
    _fake_record_run(root, "20261124-000002-000-record-main", scenarios=("one_cube", "one_cube", "two_cubes"))
    _fake_record_run(root, "20261124-000001-000-record-fps30", fps=30, scenarios=("one_cube",))
    _fake_record_run(root, "20261124-000000-000-record-topcam", cameras=("side", "top"), scenarios=("one_cube",))


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def clean_environment():
    """runner.cli.main sets RUNNER_* variables for its child processes: keep them out of later tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _refused(stage: str, args: list[str], root: Path, capsys, env: dict | None = None) -> str:
    """``runner STAGE ARGS`` in-process; with ``env`` in a process of its own with that environment (a Hub case:
    huggingface_hub reads HF_ENDPOINT once, when it is first imported), forked from a warm server for it."""
    from runner.cli import main

    os.environ["RUNNER_OUTPUTS"] = str(root)
    before = _snapshot(root)
    if env is None:
        code = main([stage, *args])
        stderr = capsys.readouterr().err
    else:
        done = run_runner(stage, *args, env=env, timeout=300)
        code, stderr = done.returncode, done.stderr
    assert code == 2, f"runner {stage} {' '.join(args)} exited {code}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert _snapshot(root) == before, "nothing may be written"
    return stderr


def _with_files(case: dict, config_dir: Path) -> list[str]:
    """A case's ``files`` (config files a user edits, malformed) written under a config dir of their own that
    Hydra searches besides conf/ (``hydra.searchpath``): the repo's own files stay untouched."""
    if not case.get("files"):
        return case["args"]
    for name, text in case["files"].items():
        (config_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (config_dir / name).write_text(text)
    return [f"hydra.searchpath=[file://{config_dir}]", *case["args"]]


def _check(case: dict, root: Path, capsys, hub: FakeHub | None = None) -> None:
    # One Hugging Face cache for every Hub case: a refusal downloads nothing, and one environment is one warm server.
    env = None if hub is None else {**hub.env(hub.root.parent / "bad_inputs_hf_home"), **case.get("env", {})}
    stderr = _refused(case["stage"], _with_files(case, root.parent / "user_conf"), root, capsys, env)
    # The one paragraph runner prints: a config error, or else a command's own refusal ("runner compare: ...");
    # never the whole of stderr, where an argparse usage line echoing the argument would pass.
    lines = stderr.splitlines()
    paragraphs = [line for line in lines if line.startswith("Config error")]
    paragraphs = paragraphs or [line for line in lines if line.startswith(f"runner {case['stage']}:")]
    assert len(paragraphs) == 1, f"one refusal paragraph, got:\n{stderr[-3000:]}"
    [paragraph] = paragraphs
    for word in case["words"]:
        assert word in paragraph, f"{word!r} missing from: {paragraph}"


@pytest.mark.parametrize("case", [c for c in CASES if c.get("needs") not in ("trained", "hub")], ids=lambda c: c["id"])
def test_bad_input_is_refused_before_anything_is_written(case, tmp_path, capsys, clean_environment):
    root = tmp_path / "outputs"
    if case.get("needs") == "dataset":
        _fake_record_run(root)
    if case.get("needs") == "datasets":
        _fake_datasets(root)
    _check(case, root, capsys)


@pytest.mark.parametrize("case", [c for c in CASES if c.get("needs") == "hub"], ids=lambda c: c["id"])
def test_bad_hub_input_is_refused_before_anything_is_written(case, fake_hub, tmp_path, capsys):
    """Against the test Hub (tests/hub/fake_hub.py): tokens, owners, revisions, a repo of another robot."""
    root = tmp_path / "outputs"
    if case.get("with_dataset"):
        _fake_record_run(root)
    _check(case, root, capsys, fake_hub)


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
@pytest.mark.parametrize("case", [c for c in CASES if c.get("needs") == "trained"], ids=lambda c: c["id"])
def test_bad_input_against_real_runs_is_refused_before_anything_is_written(case, trained, capsys, clean_environment):
    _check(case, trained, capsys)


def test_the_corpus_covers_every_stage_and_group():
    stages = {case["stage"] for case in CASES}
    assert stages >= {"record", "train", "eval", "teleoperate", "calibrate", "pipeline", "compare", "report"}
    keys = {word.strip("`").split("=")[0].split(".")[0] for case in CASES for word in case["words"][:1]}
    assert keys >= {"robot", "teleop", "cameras", "host", "task", "episode", "dataset", "policy", "train", "eval",
                    "pipeline", "resume", "policy_run", "dataset_run", "sweep", "duration_s"}  # fmt: skip
    assert len(CASES) >= 60
    quoted = re.search(r"`tests/schema/bad_inputs/` \((\d+) cases\)", (REPO / "RELIABILITY.md").read_text())
    assert quoted and int(quoted.group(1)) == len(CASES), "RELIABILITY.md quotes the corpus's size"


# --- fuzzing ------------------------------------------------------------------------------------------

SCALAR_KEYS = ["episode.fps", "episode.episode_time_s", "episode.num_episodes", "episode.min_frames",
               "episode.realtime", "episode.validation", "cameras.side.width", "teleop.speed",
               "teleop.failure_rate", "train.steps", "train.batch_size", "train.device", "eval.n_episodes",
               "eval.videos", "policy.chunk_size", "dataset.repo_id", "task.instruction", "duration_s"]  # fmt: skip
VALUES = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["true", "maybe", "null", "''", "[]", "[1,2]", "{a: 1}", "???", "${nope}", "fast", "-0"]),
    st.text(alphabet="abcxyz_ .-/", min_size=1, max_size=8),
)
KEYS = st.one_of(st.sampled_from(SCALAR_KEYS), st.sampled_from(SCALAR_KEYS).map(lambda k: k + "x"))


def _validate(stage_name: str, overrides: list[str]) -> None:
    """Compose ``overrides`` as Hydra composes a run's config, then run every check a run goes through before
    it starts (``runner.core.jobs.validate_job``: the schema's bounds, the job's checks and the stage's own, up to the
    point where the stage would create its run), without starting it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from runner.cli import STAGES
    from runner.core.conf import CONF_DIR, register_resolvers
    from runner.core.jobs import validate_job
    from runner.schema import register_schemas

    register_schemas()
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        validate_job(STAGES[stage_name], cfg, ["runner", stage_name, *overrides])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, value=VALUES)
def test_fuzzed_overrides_pass_every_check_or_fail_naming_the_key(key, value, tmp_path, clean_environment):
    """Any override either passes every check a record run makes before it starts, or fails as a config error
    whose paragraph names the key; never another exception, and nothing is written either way."""
    from runner.core.errors import format_config_error, is_config_error

    os.environ["RUNNER_OUTPUTS"] = str(tmp_path / "outputs")
    os.environ["RUNNER_STAGE"] = "record"
    try:
        _validate("record", [f"{key}={value}"])
    except Exception as error:  # what is raised is the subject
        assert is_config_error(error), f"{key}={value} raised {type(error).__name__}: {error}"
        paragraph = format_config_error(error, "runner record")
        assert key.split(".")[0] in paragraph or "malformed override" in paragraph, paragraph
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "override, words",
    [
        ("episode.fps=-3", ["`episode.fps`", ">= 1"]),
        ("episode.episode_time_s=inf", ["`episode.episode_time_s`", "not a finite number"]),
        ("cameras.side.width=0", ["`cameras.side.width`"]),
    ],
)
def test_the_fuzzers_checks_are_a_runs_checks(override, words, tmp_path, clean_environment):
    """Values that compose (`--cfg job` prints them) but no run accepts: the fuzzer's validation refuses them."""
    from runner.core.errors import format_config_error

    os.environ["RUNNER_OUTPUTS"] = str(tmp_path / "outputs")
    os.environ["RUNNER_STAGE"] = "record"
    with pytest.raises(Exception) as caught:
        _validate("record", [override])
    paragraph = format_config_error(caught.value, "runner record")
    for word in words:
        assert word in paragraph, paragraph
