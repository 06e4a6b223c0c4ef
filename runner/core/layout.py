"""Every path inside a run directory and a sweep directory: the contract that outputs/README.md documents.

Stages write these paths and commands (compare, reports, viz, runs) read them; neither spells a file name
itself, so renaming one is a change here and in outputs/README.md. Names are relative to the run directory
(as run.json's ``artifacts`` lists them), the dataset's own files relative to the dataset.
"""

from __future__ import annotations

RUN_JSON = "run.json"
SWEEP_JSON = "sweep.json"
RUN_LOG = "run.log"
HYDRA_DIR = ".hydra"
CONFIG_YAML = f"{HYDRA_DIR}/config.yaml"  # the resolved config the stage ran with
HYDRA_YAML = f"{HYDRA_DIR}/hydra.yaml"  # Hydra's own settings (runtime.choices: the group options)
OVERRIDES_YAML = f"{HYDRA_DIR}/overrides.yaml"
GIT_DIFF = "git.diff"

# record, and dataset (`runner dataset`: a dataset derived from recordings, the same layout)
DATASET_DIR = "dataset"
DATASET_STAGES = ("record", "dataset")  # the stages whose run directory holds DATASET_DIR
EPISODES_CSV = "episodes.csv"  # record: one row per attempt; eval: one row per episode (in eval/)
SETUP_NOTES = "setup_notes.txt"
# Inside a LeRobot dataset: LeRobot's own metadata, and what runner keeps beside it so that a dataset copied
# out of its run still says how it was recorded.
DATASET_META = "meta"
DATASET_INFO = f"{DATASET_META}/info.json"
DATASET_EPISODES_CSV = f"{DATASET_META}/runner_episodes.csv"
DATASET_SIM_WORLD = f"{DATASET_META}/runner_sim_world.json"

# train
TRAIN_DIR = "train"  # LeRobot's output_dir: checkpoints/<step>/pretrained_model, checkpoints/last
TRAIN_METRICS_CSV = f"{TRAIN_DIR}/metrics.csv"
TRAIN_LOSS_PNG = f"{TRAIN_DIR}/loss.png"
TRAIN_LOGS_DIR = "logs"  # one log per rank under accelerate
# Inside each checkpoint's pretrained_model/, beside LeRobot's files: the runner config it was trained with.
CHECKPOINT_RUNNER_CONFIG = "runner_config.yaml"

# calibrate: a copy of each arm's LeRobot calibration file
CALIBRATION_DIR = "calibration"

# eval
EVAL_DIR = "eval"
EVAL_METRICS_JSON = f"{EVAL_DIR}/metrics.json"
EVAL_EPISODES_CSV = f"{EVAL_DIR}/{EPISODES_CSV}"
VIDEOS_DIR = "videos"  # in eval/: the first eval.videos episodes
EVAL_ROLLOUTS_DIR = f"{EVAL_DIR}/rollouts"

# a scene check (eval/, or a check-scene run): the recording's view | now | what changed, per camera
SCENE_OVERLAY = "scene_{role}.png"

# compare (and a pipeline's last step)
COMPARISON_FILES = ("comparison.csv", "comparison.md", "comparison.png")

# report: report.md and report.html embed the report's PNGs; report.json has every number
REPORT_STEM = "report"
REPORT_JSON = f"{REPORT_STEM}.json"
