"""LeRobot's own CLIs on runner's world, with no runner command involved: the plugins in plugins/ register the
simulated arm, the scripted operator, the emulated camera and the pick-and-place env with LeRobot."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_dirs, run_runner

BIN = Path(sys.executable).parent
SIM_ARM = ["--robot.type=sim_so101", "--robot.fps=10", "--robot.camera_sizes={wrist: [128, 96], side: [128, 96]}"]
TASK = "pick up the red cube and place it on the blue square"


def _lerobot(tool: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, f"{tool} failed:\n{result.stderr[-3000:]}"
    return result


def _frames(video: Path) -> np.ndarray:
    import av

    with av.open(str(video)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.int16)


def test_the_plugins_register_runners_types_through_lerobots_discovery():
    script = """
from lerobot.cameras import CameraConfig
from lerobot.envs.configs import EnvConfig
from lerobot.robots.config import RobotConfig
from lerobot.teleoperators.config import TeleoperatorConfig
from lerobot.utils.import_utils import register_third_party_plugins

register_third_party_plugins()
print(sorted({"sim_so101"} & set(RobotConfig.get_known_choices())), sorted({"sim_scripted"} & set(
    TeleoperatorConfig.get_known_choices())), sorted({"runner_emulated"} & set(CameraConfig.get_known_choices())),
    sorted({"runner_sim"} & set(EnvConfig.get_known_choices())))
"""
    # A fresh interpreter that never imports runner itself: only LeRobot's discovery can register the types.
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["['sim_so101']", "['sim_scripted']", "['runner_emulated']", "['runner_sim']"]


@pytest.mark.slow
def test_lerobot_record_and_teleoperate_drive_the_simulated_arm(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "recorded"
    _lerobot("lerobot-record", *SIM_ARM, "--teleop.type=sim_scripted", "--dataset.repo_id=local/plugin_record",
             f"--dataset.root={root}", "--dataset.num_episodes=1", "--dataset.episode_time_s=2", "--dataset.fps=10",
             "--dataset.reset_time_s=0", f"--dataset.single_task={TASK}", "--dataset.push_to_hub=false",
             "--display_data=false", "--play_sounds=false", cwd=tmp_path)  # fmt: skip
    dataset = LeRobotDataset("local/plugin_record", root=root)
    assert dataset.num_episodes == 1 and 15 <= dataset.num_frames <= 20, dataset.num_frames
    assert set(dataset.meta.video_keys) == {"observation.images.wrist", "observation.images.side"}
    assert dataset[0]["observation.images.side"].shape == (3, 96, 128)
    actions = np.stack([dataset[i]["action"].numpy() for i in range(dataset.num_frames)])
    assert np.ptp(actions, axis=0).max() > 1.0, "the scripted operator moved the arm (degrees)"

    teleop = _lerobot("lerobot-teleoperate", *SIM_ARM, "--teleop.type=sim_scripted", "--fps=10",
                      "--teleop_time_s=1", "--display_data=false", cwd=tmp_path)  # fmt: skip
    assert "Teleop loop time" in teleop.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("trained")
def test_lerobot_eval_on_runner_sim_reproduces_runner_eval_and_lerobot_rollout_runs_a_checkpoint(trained, tmp_path):
    [train] = [d for d in run_dirs(trained) if "-train-" in d.name]
    checkpoint = train / "train" / "checkpoints" / "000004" / "pretrained_model"
    ours = run_runner("eval", "experiment=sim_demo", f"policy_run={train.name}", "eval.checkpoint=4",
                      "eval.n_episodes=2", "eval.batch_size=1", "eval.videos=2", "episode.episode_time_s=2",
                      env={"RUNNER_OUTPUTS": str(trained)}, timeout=600)  # fmt: skip
    assert ours.returncode == 0, ours.stderr[-3000:]
    [run] = [d for d in run_dirs(trained) if "-eval-" in d.name and "eval.videos=2" in (d / "run.json").read_text()]
    with open(run / "eval" / "episodes.csv") as f:
        episodes = list(csv.DictReader(f))

    out = tmp_path / "lerobot_eval"
    _lerobot("lerobot-eval", f"--policy.path={checkpoint}", "--policy.device=cpu", "--env.type=runner_sim",
             "--env.experiment=sim_demo", "--env.episode_length=20", "--eval.n_episodes=2", "--eval.batch_size=1",
             "--seed=10000", f"--output_dir={out}", cwd=tmp_path, timeout=600)  # fmt: skip
    theirs = json.loads((out / "eval_info.json").read_text())["per_task"][0]["metrics"]
    assert theirs["successes"] == [row["success"] == "True" for row in episodes]
    assert theirs["sum_rewards"] == pytest.approx([float(row["sum_reward"]) for row in episodes], abs=1e-6)
    # The same trajectories, frame by frame: runner's videos hold the reset frame first, LeRobot's do not.
    for index, row in enumerate(episodes):
        ours_frames = _frames(run / "eval" / "videos" / f"episode_{index:03d}_seed{row['seed']}.mp4")
        their_frames = _frames(out / "videos" / "runner_sim_0" / f"eval_episode_{index}.mp4")
        assert their_frames.shape == ours_frames[:-1].shape
        moved = np.abs(ours_frames[0] - ours_frames[-1]).mean()
        differs = np.abs(ours_frames[:-1] - their_frames).mean(axis=(1, 2, 3)).max()
        assert moved > 5 and differs < 1.5, f"episode {index}: frames differ by {differs:.2f} (motion {moved:.1f})"

    rollout = _lerobot("lerobot-rollout", "--strategy.type=base", f"--policy.path={checkpoint}", *SIM_ARM,
                       f"--task={TASK}", "--duration=2", "--fps=10", "--device=cpu", "--play_sounds=false",
                       cwd=tmp_path)  # fmt: skip
    assert "Rollout finished" in rollout.stderr
