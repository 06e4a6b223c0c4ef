"""No secret ever lands in a file a run writes."""

import pytest
from conftest import SUITE_SECRETS, run_dirs, run_probe, run_runner

from runner.core.redact import REDACTED, Redactor, is_secret_name

HF = "hf_TESTtokenVALUE1234567890"
WANDB = "wandb0123456789abcdef0123456789abcdef0123"
PORT_KEY = "port-key-SECRET-77"


def _every_file_text(root):
    return {p: p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file()}


def test_tokens_in_env_and_config_never_reach_the_run_dir(outputs_root):
    env = {"HF_TOKEN": HF, "WANDB_API_KEY": WANDB}
    result = run_probe(
        "episode.reset_time_s=0",
        # A token pasted into an ordinary value, and a value under a secret-looking key of an open map.
        f"task.instruction=use {HF} please",
        f"+host.ports.api_key={PORT_KEY}",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    [run_dir] = run_dirs(outputs_root)
    files = _every_file_text(run_dir)
    assert {".hydra/config.yaml", "run.json", "run.log"} <= {str(p.relative_to(run_dir)) for p in files}
    for path, text in files.items():
        for secret in (HF, WANDB, PORT_KEY):
            assert secret not in text, f"{secret[:6]}... leaked into {path}"
    assert REDACTED in (run_dir / ".hydra" / "config.yaml").read_text()
    assert REDACTED in (run_dir / "run.json").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
def test_no_stage_writes_a_secret_anywhere(trained):
    """The suite's record and train runs (made with tokens in the environment), plus an eval sweep with a
    token in a config value and under a secret-named key, its comparison and the reports: every byte of
    every file, datasets, videos and checkpoints included, is free of every secret."""
    env = {"RUNNER_OUTPUTS": str(trained)}
    evaluated = run_runner(
        "eval", "experiment=sim_demo", "eval.checkpoint=all", "eval.n_episodes=1", "episode.episode_time_s=1",
        "eval.save_rollouts=true", f"task.instruction=pick it up {SUITE_SECRETS['HF_TOKEN']}",
        f"+host.ports.hub_token={PORT_KEY}", env=env, timeout=900,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    for command in (["compare", "latest-sweep"], ["report", "dataset", "latest:record"],
                    ["report", "experiment", "sim_demo"]):  # fmt: skip
        result = run_runner(*command, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    secrets = [PORT_KEY, *SUITE_SECRETS.values()]
    files = [p for p in trained.rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in files) and any(p.suffix == ".safetensors" for p in files)
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "comparison.md" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}... leaked into {path}"


def test_tokens_never_reach_a_sweep_record(outputs_root):
    result = run_probe("-m", "episode.reset_time_s=0,0.01", f"task.instruction=use {HF}", env={"HF_TOKEN": HF})
    assert result.returncode == 0, result.stderr
    files = _every_file_text(outputs_root)
    assert any(path.name == "multirun.yaml" for path in files)
    for path, text in files.items():
        assert HF not in text, f"leaked into {path}"


@pytest.mark.parametrize(
    "name,secret",
    [
        ("HF_TOKEN", True),
        ("WANDB_API_KEY", True),
        ("hubToken", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DB_PASSWORD", True),
        ("apikey", True),
        ("keys", False),
        ("early_stop.keys", False),
        ("monkey", False),
        ("keep_checkpoints", False),
        ("HOME", False),
        ("tokenizer_path", False),
    ],
)
def test_secret_names_match_by_word(name, secret):
    assert is_secret_name(name.rsplit(".", 1)[-1]) is secret


def test_redactor_scrubs_values_keys_and_overrides(monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "abcdefghijkl")
    monkeypatch.setenv("SHORT_KEY", "1")
    redactor = Redactor()
    assert redactor.text("token abcdefghijkl here") == f"token {REDACTED} here"
    assert redactor.text("value 1 stays") == "value 1 stays", "short values are not treated as secrets"
    assert redactor.override("+a.hub_token=zzz") == f"+a.hub_token={REDACTED}"
    assert redactor.data({"x": {"password": "p", "n": [1, "abcdefghijkl"]}}) == {
        "x": {"password": REDACTED, "n": [1, REDACTED]}
    }
