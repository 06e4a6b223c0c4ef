"""`runner train`: LeRobot checkpoints on a schedule, lineage, retention, resume after SIGKILL, bad input."""

import csv
import json
from pathlib import Path

import pytest
from conftest import TINY_ACT, run_dirs, run_runner, start_runner, wait_for_log

# With pytest-xdist, the tests sharing the `recorded` fixture run in one worker, so it is built once.
pytestmark = pytest.mark.xdist_group("recorded")

TRAIN = ["experiment=sim_demo", "train.num_workers=0", "train.batch_size=2", "train.log_freq=5"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """An outputs root holding one tiny record run (2 simulated episodes)."""
    root = tmp_path_factory.mktemp("train") / "outputs"
    result = run_runner(
        "record", "experiment=sim_demo", "episode.num_episodes=2", "episode.realtime=false",
        env={"RUNNER_OUTPUTS": str(root)}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def _train(root: Path, *overrides: str, timeout: float = 900):
    return run_runner("train", *TRAIN, *overrides, env={"RUNNER_OUTPUTS": str(root)}, timeout=timeout)


def _train_runs(root: Path) -> list[Path]:
    return [d for d in run_dirs(root) if "-train-" in d.name]


def _load_and_act(checkpoint: Path, dataset_root: Path):
    import torch

    from runner.lerobot_adapter.datasets import load_dataset
    from runner.lerobot_adapter.evaluation import load_policy

    loaded = load_policy(checkpoint / "pretrained_model", "cpu")
    policy, pre, post = loaded.policy, loaded.preprocessor, loaded.postprocessor
    item = load_dataset(dataset_root, "local/sim_demo")[0]
    batch = {k: v.unsqueeze(0) for k, v in item.items() if k.startswith("observation")}
    batch["task"] = [item["task"]]
    with torch.no_grad():
        return post(policy.select_action(pre(batch)))


@pytest.mark.slow
def test_tiny_act_run_saves_loadable_checkpoints_with_lineage(recorded):
    before = set(_train_runs(recorded))
    result = _train(recorded, "train.steps=20", "train.save_freq=10", *TINY_ACT)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = set(_train_runs(recorded)) - before
    [record_dir] = [d for d in run_dirs(recorded) if "-record-" in d.name]
    checkpoints = run_dir / "train" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000010", "000020", "last"]
    assert (checkpoints / "last").resolve().name == "000020"
    for step in ("000010", "000020"):
        action = _load_and_act(checkpoints / step, record_dir / "dataset")
        assert tuple(action.shape) == (1, 6)
    pretrained = checkpoints / "000020" / "pretrained_model"
    lineage = json.loads((pretrained / "runner_lineage.json").read_text())
    assert lineage["dataset_runs"] == [record_dir.name] and lineage["train_run"] == run_dir.name
    assert "dim_model: 32" in (pretrained / "runner_config.yaml").read_text()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["parents"] == [record_dir.name]
    assert [c["step"] for c in record["checkpoints"]] == [10, 20]
    assert all(c["size_mb"] > 0 for c in record["checkpoints"])
    metrics = (run_dir / "train" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("step,loss,lr") and [m.split(",")[0] for m in metrics[1:]] == ["5", "10", "15", "20"]
    assert (run_dir / "train" / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_two_processes_train_data_parallel_under_accelerate(recorded):
    """No GPU here: accelerate's multi-process launcher runs 2 CPU ranks in a gloo group."""
    before = set(_train_runs(recorded))
    result = _train(recorded, "train.steps=4", "train.save_freq=2", "train.log_freq=2", "train.num_processes=2",
                    *TINY_ACT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = set(_train_runs(recorded)) - before
    [record_dir] = [d for d in run_dirs(recorded) if "-record-" in d.name]
    checkpoints = run_dir / "train" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000002", "000004", "last"]
    assert tuple(_load_and_act(checkpoints / "000004", record_dir / "dataset").shape) == (1, 6)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["train"]["num_processes"] == 2 and [c["step"] for c in record["checkpoints"]] == [2, 4]
    # The main rank alone reports: one metrics row per logged step, not one per rank.
    metrics = (run_dir / "train" / "metrics.csv").read_text().splitlines()
    assert [m.split(",")[0] for m in metrics[1:]] == ["2", "4"]
    assert {p.name for p in (run_dir / "logs").glob("rank*.log")} == {"rank0.log", "rank1.log"}
    assert "Effective batch size: 2 x 2 = 4" in (run_dir / "logs" / "rank0.log").read_text()  # LeRobot's own line
    assert "2 process(es)" in (run_dir / "run.log").read_text()


@pytest.mark.slow
def test_sigkill_then_resume_continues_step_and_optimizer(recorded):
    before = set(_train_runs(recorded))
    process = start_runner("train", *TRAIN, "train.steps=18", "train.save_freq=6", "train.log_freq=3", *TINY_ACT,
                           env={"RUNNER_OUTPUTS": str(recorded)})  # fmt: skip
    wait_for_log(process, "checkpoint 6 saved")
    process.kill()
    process.wait(timeout=30)
    [run_dir] = set(_train_runs(recorded)) - before
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # shown as stale

    resumed = run_runner("train", f"resume={run_dir.name}", env={"RUNNER_OUTPUTS": str(recorded)}, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from checkpoint 6 to step 18" in resumed.stderr
    state = run_dir / "train" / "checkpoints" / "last" / "training_state"
    assert json.loads((state / "training_step.json").read_text())["step"] == 18
    from safetensors.torch import load_file

    optimizer = load_file(state / "optimizer_state.safetensors")
    adam_steps = {float(v) for k, v in optimizer.items() if k.endswith("/step")}
    assert adam_steps == {18.0}, "the optimizer continued from step 6 rather than starting again"
    rows = (run_dir / "train" / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [3, 6, 9, 12, 15, 18]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "succeeded" and record["resumes"][0]["from_status"] == "stale"


@pytest.mark.slow
def test_diffusion_trains_a_few_steps(recorded):
    result = _train(
        recorded, "policy=diffusion", "train.steps=4", "train.save_freq=2", "policy.down_dims=[16,32]",
        "policy.horizon=8", "policy.n_action_steps=4", "policy.drop_n_last_frames=3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = sorted(_train_runs(recorded))[-1]
    assert sorted(p.name for p in (run_dir / "train" / "checkpoints").iterdir()) == ["000002", "000004", "last"]


@pytest.mark.slow
def test_smolvla_trains_from_a_local_stand_in_vlm_then_fine_tunes_with_lora(recorded, tmp_path):
    from tiny_vlm import build_tiny_vlm

    vlm = build_tiny_vlm(tmp_path / "tiny-smolvlm")
    smolvla = [
        "policy=smolvla", f"policy.vlm_path={vlm}", "policy.load_vlm_weights=false",
        "policy.resize_imgs_with_padding=[64,64]", "policy.chunk_size=5", "policy.n_action_steps=5",
        "policy.max_state_dim=8", "policy.max_action_dim=8", "policy.tokenizer_max_length=16",
        "policy.scheduler_warmup_steps=1", "policy.scheduler_decay_steps=10", "train.steps=3", "train.save_freq=3",
    ]  # fmt: skip
    result = _train(recorded, *smolvla)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = sorted(_train_runs(recorded))[-1]
    config = json.loads((run_dir / "train" / "checkpoints" / "000003" / "pretrained_model" / "config.json").read_text())
    assert config["type"] == "smolvla" and config["vlm_model_name"] == str(vlm)
    full = json.loads((run_dir / "run.json").read_text())["parameters"]

    # LoRA on the policy just trained (LeRobot's PEFT): the same model, far fewer weights that learn.
    pretrained = run_dir / "train" / "checkpoints" / "000003" / "pretrained_model"
    result = _train(recorded, *smolvla, f"policy.pretrained_path={pretrained}", "policy.lora_rank=4")
    assert result.returncode == 0, result.stderr[-3000:]
    lora_run = sorted(_train_runs(recorded))[-1]
    lora = json.loads((lora_run / "run.json").read_text())["parameters"]
    assert 0 < lora["learnable"] < full["learnable"] / 2, (lora, full)
    assert (lora_run / "train" / "checkpoints" / "000003" / "pretrained_model" / "adapter_config.json").exists()


def _fake_record_run(root: Path, features: dict) -> str:
    run_id = "20261124-000000-000-record-fake"
    meta = root / "default" / run_id / "dataset" / "meta"
    meta.mkdir(parents=True)
    (meta / "info.json").write_text(json.dumps({"fps": 10, "total_episodes": 1, "features": features}))
    (meta.parent.parent / "run.json").write_text(json.dumps({"id": run_id, "stage": "record", "status": "succeeded"}))
    return run_id


def test_a_dataset_without_images_is_refused_for_an_image_policy(outputs_root):
    _fake_record_run(outputs_root, {"observation.state": {"dtype": "float32"}, "action": {"dtype": "float32"}})
    result = run_runner("train", *TRAIN)
    assert result.returncode == 2
    assert "has no camera images, and policy=act needs at least one" in result.stderr


def test_schedule_and_retention_rules(tmp_path):
    from omegaconf import OmegaConf

    from runner.stages.train import _retain, save_schedule

    train = OmegaConf.create({"steps": 100, "save_freq": 30, "save_steps": None})
    assert save_schedule(train) == [30, 60, 90, 100], "the last step is always saved"
    train.save_steps = [10, 50]
    assert save_schedule(train) == [10, 50, 100]
    checkpoints = {}
    for step in (10, 20, 30, 40, 50):
        (tmp_path / str(step)).mkdir()
        checkpoints[step] = tmp_path / str(step)
    assert _retain(tmp_path, 2, [10], 50, checkpoints) == [20, 30]
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == [10, 40, 50]
    assert _retain(tmp_path, None, [], 50, {}) == [], "keep_checkpoints=null keeps everything"


@pytest.mark.slow
def test_two_record_runs_merge_and_a_checkpoint_is_a_starting_point(recorded):
    second = run_runner(
        "record", "experiment=sim_demo", "episode.num_episodes=1", "episode.realtime=false", "episode.seed=100",
        env={"RUNNER_OUTPUTS": str(recorded)}, timeout=600,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    records = sorted(d.name for d in run_dirs(recorded) if "-record-" in d.name)
    before = set(_train_runs(recorded))
    merged = _train(recorded, f"dataset_run=[{records[0]},{records[1]}]", "train.steps=2", "train.save_freq=2",
                    *TINY_ACT)  # fmt: skip
    assert merged.returncode == 0, merged.stderr[-3000:]
    [run_dir] = set(_train_runs(recorded)) - before
    info = json.loads((run_dir / "dataset" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 3, "2 + 1 episodes, merged by LeRobot into the train run"
    assert sorted(json.loads((run_dir / "run.json").read_text())["parents"]) == records

    checkpoint = run_dir / "train" / "checkpoints" / "000002" / "pretrained_model"
    finetuned = _train(recorded, f"policy.pretrained_path={checkpoint}", "train.steps=2", "train.save_freq=2",
                       *TINY_ACT)  # fmt: skip
    assert finetuned.returncode == 0, finetuned.stderr[-3000:]
    newest = sorted(_train_runs(recorded))[-1]
    saved = newest / "train" / "checkpoints" / "000002" / "pretrained_model" / "train_config.json"
    assert json.loads(saved.read_text())["policy"]["pretrained_path"] == str(checkpoint)


@pytest.mark.slow
def test_wandb_offline_never_writes_the_key(recorded):
    key = "wandbkey0123456789abcdef0123456789abcdef"
    before = set(_train_runs(recorded))
    result = run_runner(
        "train", *TRAIN, "train.wandb=offline", "train.steps=2", "train.save_freq=2", *TINY_ACT,
        env={"RUNNER_OUTPUTS": str(recorded), "WANDB_API_KEY": key}, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = set(_train_runs(recorded)) - before
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any("wandb" in str(p) for p in files), "the offline W&B run is kept with the train run"
    for path in files:
        assert key.encode() not in path.read_bytes(), f"the W&B key leaked into {path}"


@pytest.mark.slow
def test_validation_loss_on_held_out_episodes_reaches_metrics_run_json_the_plot_and_compare(recorded):
    [two_episodes] = [d for d in run_dirs(recorded) if "-record-" in d.name][:1]  # the module's own recording
    before = set(_train_runs(recorded))
    result = _train(recorded, f"dataset_run={two_episodes.name}", "train.steps=4", "train.save_freq=2",
                    "train.val_split=0.5", *TINY_ACT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = set(_train_runs(recorded)) - before
    assert "Train/eval split: 1 train, 1 eval" in (run_dir / "run.log").read_text(), "LeRobot held one episode out"
    with open(run_dir / "train" / "metrics.csv") as f:
        held_out = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(f) if r["val_loss"]}
    assert sorted(held_out) == [2, 4], "validation at every checkpoint (val_every defaults to the save schedule)"
    record = json.loads((run_dir / "run.json").read_text())
    assert {c["step"]: c["val_loss"] for c in record["checkpoints"]} == held_out
    assert (run_dir / "train" / "loss.png").stat().st_size > 5000

    env = {"RUNNER_OUTPUTS": str(recorded)}
    one_episode = ["eval.n_episodes=1", "episode.episode_time_s=1", "eval.videos=0"]
    evaluated = run_runner("eval", "experiment=sim_demo", f"policy_run={run_dir.name}", "eval.checkpoint=4",
                           *one_episode, env=env, timeout=600)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    compare = run_runner("compare", "latest:eval", "--json", env=env)
    assert compare.returncode == 0, compare.stderr[-3000:]
    [row] = json.loads(compare.stdout)["rows"]
    assert row["checkpoint_step"] == 4 and row["val_loss"] == held_out[4]
    shown = run_runner("compare", "latest:eval", env=env)
    assert "val loss" in shown.stdout and f"{held_out[4]:.4f}" in shown.stdout


@pytest.mark.slow
def test_camera_names_map_a_recordings_roles_onto_a_pretrained_models_cameras(recorded, tmp_path):
    """A base model trained with wrist+side, fine-tuned on a recording with side+top: refused naming both lists
    until policy.camera_names maps top onto wrist; the fine-tuned checkpoint then evaluates with side+top."""
    env = {"RUNNER_OUTPUTS": str(recorded)}
    [wrist_side] = [d for d in run_dirs(recorded) if "-record-" in d.name][:1]  # the module's recording
    before = set(_train_runs(recorded))
    base_train = _train(recorded, f"dataset_run={wrist_side.name}", "train.steps=2", "train.save_freq=2", *TINY_ACT)
    assert base_train.returncode == 0, base_train.stderr[-3000:]
    [base] = set(_train_runs(recorded)) - before
    pretrained = base / "train" / "checkpoints" / "000002" / "pretrained_model"
    # A cameras option of the user's own, in a config dir Hydra searches beside conf/.
    (tmp_path / "cameras").mkdir()
    camera = "{type: sim, width: 64, height: 48, fps: 30}"
    (tmp_path / "cameras" / "side_top.yaml").write_text(f"side: {camera}\ntop: {camera}\n")
    side_top = [f"hydra.searchpath=[file://{tmp_path}]", "cameras=side_top"]
    recorded_top = run_runner("record", "experiment=sim_demo", *side_top, "episode.num_episodes=1",
                              "episode.episode_time_s=1", env=env, timeout=600)  # fmt: skip
    assert recorded_top.returncode == 0, recorded_top.stderr[-3000:]
    [top_run] = [d for d in run_dirs(recorded) if "-record-" in d.name and d.name > wrist_side.name][-1:]
    fine_tune = [f"dataset_run={top_run.name}", f"policy.pretrained_path={pretrained}", "train.steps=2",
                 "train.save_freq=2", *TINY_ACT]  # fmt: skip

    runs_before = run_dirs(recorded)
    refused = _train(recorded, *fine_tune)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert run_dirs(recorded) == runs_before, "refused before any run is made"
    assert "`policy.camera_names`" in refused.stderr and "['side', 'top']" in refused.stderr
    assert "['side', 'wrist']" in refused.stderr

    result = _train(recorded, *fine_tune, "+policy.camera_names={top: wrist}")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = sorted(_train_runs(recorded))[-1]
    evaluated = run_runner("eval", "experiment=sim_demo", *side_top, f"policy_run={tuned.name}", "eval.n_episodes=1",
                           "episode.episode_time_s=1", "eval.videos=0", env=env, timeout=600)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
