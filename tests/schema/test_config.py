"""The config tree: defaults, every option, every experiment preset with every stage."""

import dataclasses

import pytest
from conftest import REPO, run_probe
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from probe_stage import PROBE

from runner import schema
from runner.cli import STAGES
from runner.core.conf import CONF_DIR, register_resolvers
from runner.core.errors import ConfigError
from runner.core.job_checks import check_complete
from runner.core.redact import is_secret_name

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
GROUPS = (
    "robot",
    "teleop",
    "cameras",
    "host",
    "task",
    "episode",
    "dataset",
    "policy",
    "train",
    "eval",
    "pipeline",
    "serve",
    "paths",
)


def _compose(*overrides: str):
    schema.register_schemas()
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_defaults_compose_a_complete_config():
    cfg = _compose()
    assert set(GROUPS) <= set(cfg.keys())
    assert OmegaConf.missing_keys(cfg) == set()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["robot"]["type"] == "sim_so101"
    assert resolved["teleop"]["type"] == "sim_scripted"
    assert set(resolved["cameras"]) == {"wrist", "side"}
    assert resolved["paths"]["outputs"]


@pytest.mark.parametrize("robot", ["so100_follower", "so101_follower"])
def test_a_real_robot_records_with_real_cameras_unless_cameras_is_given(robot):
    real = _compose(f"robot={robot}")
    assert {role: camera.type.value for role, camera in real.cameras.items()} == {"wrist": "opencv", "side": "opencv"}
    chosen = _compose(f"robot={robot}", "cameras=side_only")
    assert set(chosen.cameras) == {"side"}
    assert {camera.type.value for camera in _compose("robot=sim_so101").cameras.values()} == {"sim"}


def test_experiments_folder_is_the_experiment_group():
    assert {"sim_demo", "so101_pick_place"} <= set(EXPERIMENTS)
    assert (CONF_DIR / "experiment").resolve() == (REPO / "experiments").resolve()


# What a preset leaves for its user to give on the command line (its comments say so): a local model folder.
USER_SUPPLIED = {"so101_pick_place": {"policy.vlm_path": "/models/SmolVLM2-500M-Video-Instruct"}}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_gives_every_stage_what_it_reads(experiment):
    """The check each run makes before it starts (runner.core.job_checks.check_complete): the sections the stage
    reads have no value left ??? and resolve, and every value is within its schema bounds, once the user gives what the
    preset asks for. A preset that left another key a stage needs unset, or set one out of range, fails here."""
    given = USER_SUPPLIED.get(experiment, {})
    cfg = _compose(f"experiment={experiment}", *(f"{key}={value}" for key, value in given.items()))
    for stage in [PROBE, *STAGES.values()]:
        check_complete(cfg, stage.uses)
    bare = _compose(f"experiment={experiment}")
    for stage in [PROBE, *STAGES.values()]:  # without them, exactly the stages that read them refuse, naming them
        needed = [key for key in given if key.split(".")[0] in stage.uses]
        if not needed:
            check_complete(bare, stage.uses)
            continue
        with pytest.raises(ConfigError) as caught:
            check_complete(bare, stage.uses)
        assert caught.value.key in needed


def test_the_completeness_check_names_a_missing_key_a_stage_reads():
    cfg = _compose("experiment=sim_demo", "task.instruction=???")
    check_complete(cfg, ("dataset",))  # a section without the missing key is fine
    with pytest.raises(ConfigError) as caught:
        check_complete(cfg, STAGES["record"].uses)
    assert caught.value.key == "task.instruction"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if p.stem != "local")


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group):
    for option in _options(group):
        cfg = _compose(f"{group}={option}")
        assert group in cfg
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def test_hackathon_preset_values():
    cfg = _compose("experiment=so101_pick_place")
    assert cfg.robot.type == "so101_follower" and cfg.teleop.type == "so101_leader"
    assert set(cfg.cameras) == {"wrist", "side"}
    assert len(cfg.task.scenarios) == 5
    assert all(s.num_episodes == 10 and s.instruction for s in cfg.task.scenarios)
    assert cfg.policy.type == "smolvla"
    assert (cfg.train.save_freq, cfg.train.steps) == (2000, 8000)
    assert cfg.robot.max_relative_target is not None, "real arms move with a safety limit by default"
    assert "port" not in OmegaConf.to_yaml(cfg.robot).replace("port: null", ""), "experiments never hold ports"


def test_host_profile_maps_roles_to_devices():
    cfg = _compose("host=example")
    assert cfg.host.ports.follower.startswith("/dev/serial/by-id/")
    assert set(cfg.host.cameras) == {"wrist", "side"}
    assert (REPO / ".gitignore").read_text().count("conf/host/local.yaml") == 1


def test_configs_resolve_from_any_working_directory(tmp_path, outputs_root):
    result = run_probe("experiment=sim_demo", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "local/sim_demo" in result.stdout


def test_outputs_root_moves_with_env_and_override(tmp_path, outputs_root):
    assert _compose().paths.outputs == str(outputs_root)
    assert _compose(f"paths.outputs={tmp_path}/elsewhere").paths.outputs == f"{tmp_path}/elsewhere"


def _schema_fields(node: type, prefix: str = ""):
    for f in dataclasses.fields(node):
        yield f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.type):
            yield from _schema_fields(f.type, f"{prefix}{f.name}.")


def test_no_schema_key_looks_like_a_secret():
    """Secrets come from the environment, never from configs that get saved with every run."""
    classes = [schema.RunnerConfig, *(c for options in schema.OPTION_SCHEMAS.values() for c in options.values())]
    for cls in classes:
        for name in _schema_fields(cls):
            assert not is_secret_name(name.rsplit(".", 1)[-1]), f"{cls.__name__}.{name} looks like a secret"


def test_conf_files_all_belong_to_a_group():
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} - {"hydra", "experiment"}
    assert groups == set(GROUPS)
