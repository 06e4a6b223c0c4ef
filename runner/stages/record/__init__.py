"""``runner record``: record demonstrations into a LeRobot dataset inside the run directory.

Episodes follow the task's scenarios in order (each scenario's instruction is the episode's task string)
and end early by key, by idle detection or, in simulation, by the success signal; ``episode_time_s`` is
only a cap. Each episode is validated before it is kept, and every kept episode is on disk for good before
the next one starts. ``resume=<run>`` continues a run that was killed or stopped, up to its target.
"""

from __future__ import annotations

import logging
import re
import sys

from omegaconf import DictConfig

from runner.core import disk, layout, outputs
from runner.core.context import Run, StageContext
from runner.core.errors import ConfigError
from runner.episodes.keys import KeyReader
from runner.episodes.scenarios import PlannedEpisode, plan_episodes
from runner.episodes.table import EpisodesTable
from runner.hub import push as hub_push
from runner.schema.devices import is_simulated
from runner.stages.record.attempts import Attempts
from runner.stages.record.loop import Display

log = logging.getLogger("runner.record")

EPISODE_COLUMNS = [
    "attempt", "dataset_episode", "kept", "scenario", "instruction", "seed", "operator", "success",
    "end_reason", "frames", "duration_s", "achieved_fps", "period_p50_ms", "period_p99_ms", "late_frames",
    "validation", "repeated_frames",
]  # fmt: skip
# Beside an episode's frames: its table rows, metadata, and the copies a save keeps to roll back.
EPISODE_RESERVE_BYTES = 5_000_000
# Keys a resumed recording may change; everything else must match the dataset being continued.
RESUMABLE_KEYS = (
    "episode.num_episodes",
    "episode.realtime",
    "episode.early_stop",
    "episode.reset_time_s",
    "scene_check",
    "scene",
)


def record_plan(cfg: DictConfig) -> list[PlannedEpisode]:
    """The episodes to record, scenario by scenario; ``episode.num_episodes`` cuts or cycles the list."""
    total = cfg.episode.num_episodes
    if total is None:
        total = sum(s.num_episodes for s in cfg.task.scenarios) or 1
    seeds = [cfg.episode.seed + index for index in range(max(total, 0))]
    return plan_episodes(cfg.task, seeds, count_key="episode.num_episodes")


def episode_bytes(cfg: DictConfig) -> int:
    """The disk one more episode may need while it is recorded (its staged frames, video and tables)."""
    return disk.recording_bytes(cfg, 1) + EPISODE_RESERVE_BYTES


def _check_config(cfg: DictConfig) -> None:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", cfg.dataset.repo_id):
        raise ConfigError("dataset.repo_id", f"is '{cfg.dataset.repo_id}', not a LeRobot dataset name",
                          "give <owner>/<name>, e.g. dataset.repo_id=local/pick_place")  # fmt: skip
    if cfg.teleop.type == "none":
        raise ConfigError("teleop", "is none, but recording needs someone driving the arm", "use teleop=so101_leader")
    if is_simulated(cfg.robot) and not cfg.cameras:
        raise ConfigError("cameras", "is empty", "use cameras=sim_wrist_side: the simulated arm records images")
    for index, scenario in enumerate(cfg.task.scenarios):
        region = scenario.object_region
        if region is not None and (len(region) != 4 or region[0] >= region[2] or region[1] >= region[3]):
            raise ConfigError(
                f"task.scenarios[{index}].object_region", f"is {list(region)}", "give [x_min, y_min, x_max, y_max]"
            )
        target = scenario.target_position
        if target is not None and len(target) != 2:
            raise ConfigError(f"task.scenarios[{index}].target_position", f"is {list(target)}", "give [x, y]")


def _scene_before_resume(cfg: DictConfig, previous: outputs.RunInfo) -> tuple | None:
    """On real arms, before resuming: each camera now against the recording's first episode (the arm at its start
    pose), so that a camera moved since does not mix two scenes into one dataset. Cameras are read before the
    arms connect; a changed scene is refused (scene_check=refuse) before anything is written."""
    from runner.scene.check import CameraUnusable
    from runner.scene.sources import NoReference, check_now

    if cfg.scene_check.value == "off" or not cfg.cameras:
        return None
    try:
        check, recorded, live = check_now(cfg, previous.path / layout.DATASET_DIR)
    except NoReference as error:
        log.info("scene not checked: %s", error)
        return None
    except CameraUnusable as error:
        raise ConfigError("scene_check", f"cannot compare the scene with the recording: {error}",
                          "connect the recording's cameras, or resume with scene_check=off") from None  # fmt: skip
    log.info("scene check against %s in %.2f s: %s", check.reference, check.seconds, check.summary() or "unchanged")
    if check.changed and cfg.scene_check.value == "refuse":
        raise ConfigError(
            "scene_check",
            f"found the scene changed since this recording began ({check.reference}): {check.summary()}",
            f"put the camera (or the target) back as it was (`runner check-scene {previous.id}` saves what each "
            "camera sees now beside what it saw then), or resume anyway with scene_check=warn (the dataset then "
            "holds two scenes: `runner report dataset` shows from which episode)",
        )
    return check, recorded, live


def _save_scene(run: Run, mode: str, check, recorded, live) -> None:
    from runner.scene.sources import save_to_run

    save_to_run(run, run.dir, mode, check, recorded, live)
    if check.changed:
        log.warning("the scene changed since the recording began (scene_check=warn): %s", check.summary())


def record(cfg: DictConfig, ctx: StageContext) -> None:
    from runner.hardware.checks import require_ready_arms
    from runner.lerobot_adapter import dataset_recorder, devices

    previous, cfg = ctx.resumed(cfg, RESUMABLE_KEYS)
    _check_config(cfg)
    hub_repo = cfg.dataset.hub_repo_id or cfg.dataset.repo_id
    if cfg.dataset.push_to_hub:
        hub_push.check_before_run(hub_repo, "dataset", "dataset.push_to_hub", "dataset.hub_repo_id")
    sim = is_simulated(cfg.robot)
    plan = record_plan(cfg)
    robot_config = devices.robot_config(cfg)
    teleop_config = devices.teleop_config(cfg)
    need = episode_bytes(cfg)
    disk.require_free(ctx.outputs_root if previous is None else previous.path, need,
                      f"one episode ({cfg.episode.episode_time_s:g} s of {len(cfg.cameras)} camera(s))")  # fmt: skip
    calibration = require_ready_arms(cfg)
    scene = _scene_before_resume(cfg, previous) if previous is not None and not sim else None

    run: Run = ctx.resume_run(previous, cfg) if previous is not None else ctx.start_run()
    if calibration:
        run.update(calibration=calibration)
    if scene is not None:
        _save_scene(run, cfg.scene_check.value, *scene)
    dataset_root = run.dir / layout.DATASET_DIR
    if previous is not None:
        removed = dataset_recorder.clean_staged_frames(dataset_root)
        if removed:
            log.info("removed %d staged frames of the episode the crash interrupted", removed)
        if dataset_recorder.roll_back_interrupted_save(dataset_root):
            log.info("rolled back the episode save the crash interrupted; the episodes kept before it are intact")
    (run.dir / layout.SETUP_NOTES).write_text("".join(f"- {note}\n" for note in cfg.task.setup_notes))
    run.add_artifact(layout.SETUP_NOTES)

    robot = devices.make_robot(robot_config)
    teleop = devices.make_teleop(teleop_config)
    keys = KeyReader.for_stdin() if cfg.episode.early_stop.keys else None
    display = Display(sys.stdout.isatty())
    recorder = None
    try:
        robot.connect()
        if teleop is not None:
            teleop.connect()
        recorder = dataset_recorder.DatasetRecorder(
            dataset_root, cfg.dataset.repo_id, cfg.episode.fps, robot, cfg.dataset.video, resume=previous is not None,
            vcodec=cfg.dataset.vcodec, streaming_encoding=cfg.dataset.streaming_encoding,
        )  # fmt: skip
        run.add_artifact(layout.DATASET_DIR)
        if sim:
            world = {"render": cfg.robot.render.value}
            outputs.write_json_atomic(dataset_root / layout.DATASET_SIM_WORLD, world)
            run.update(sim_world=world)
        table = EpisodesTable(
            run.dir / layout.EPISODES_CSV, EPISODE_COLUMNS, [dataset_root / layout.DATASET_EPISODES_CSV]
        )
        _forget_unsaved(table, recorder.num_episodes)
        run.add_artifact(layout.EPISODES_CSV)
        sizes = {role: (c.height, c.width) for role, c in cfg.cameras.items()}
        joints = list(robot.action_features)
        limits = _episode_limits(cfg, robot, sim, joints, tuple(sizes))
        # The range each joint may take, for validation and for the dataset report's coverage plot.
        run.update(joint_limits={j: list(limits.joint_limits[j]) for j in joints if j in limits.joint_limits})
        attempts = Attempts(cfg, run, plan, robot, teleop, recorder, table, limits, sizes, joints, keys, display,
                            dataset_root, need, sim)  # fmt: skip
        attempts.record_all()
        recorder.close()
        successes = sum(r["kept"] == "True" and r["success"] == "True" for r in table.rows)
        summary = {
            "target": len(plan),
            "kept": recorder.num_episodes,
            "discarded": attempts.discarded,
            "successes": successes,
            "complete": recorder.num_episodes >= len(plan),
        }
        run.update(episodes=summary, dataset={"repo_id": cfg.dataset.repo_id, "root": layout.DATASET_DIR})
        log.info(
            "recorded %d/%d episodes (%d discarded, %d successful) into %s",
            summary["kept"], summary["target"], attempts.discarded, successes, dataset_root,
        )  # fmt: skip
        if cfg.dataset.push_to_hub and summary["kept"]:
            hub_push.push_at_end(run, "dataset", hub_repo, cfg.dataset.private, "dataset.hub_repo_id")
    finally:
        if recorder is not None:
            recorder.close()  # idempotent: drops an unfinished episode, keeps everything saved
        display.close()
        if keys is not None:
            keys.close()
        if teleop is not None:
            devices.release(teleop)
        devices.release(robot)  # torque off, or closed anyway when the arm no longer answers


def _forget_unsaved(table: EpisodesTable, kept: int) -> None:
    """Forget kept rows the dataset does not have (the process died between saving the two)."""
    rows, seen = [], 0
    for row in table.rows:
        seen += row["kept"] == "True"
        if row["kept"] != "True" or seen <= kept:
            rows.append(row)
    table.replace(rows)


def _episode_limits(cfg: DictConfig, robot, sim: bool, joints: list[str], cameras: tuple[str, ...]):
    from runner.episodes.validation import EpisodeLimits

    return EpisodeLimits(
        fps=cfg.episode.fps,
        min_frames=cfg.episode.min_frames,
        timestamp_tolerance=cfg.episode.timestamp_tolerance,
        max_frozen_frames=cfg.episode.max_frozen_frames,
        joint_limits=robot.joint_limits() if sim else {j: (-360, 360) for j in joints},
        cameras=cameras,
    )
