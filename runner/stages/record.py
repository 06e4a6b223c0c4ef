"""``runner record``: record demonstrations into a LeRobot dataset inside the run directory.

Episodes follow the task's scenarios in order (each scenario's instruction is the episode's task string)
and end early by key, by idle detection or, in simulation, by the success signal; ``episode_time_s`` is
only a cap. Each episode is validated before it is kept, and every kept episode is on disk for good before
the next one starts. ``resume=<run>`` continues a run that was killed or stopped, up to its target.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from runner.core import disk, layout, outputs
from runner.core.context import Run, StageContext
from runner.core.errors import ConfigError
from runner.core.resume import resumed_config
from runner.episodes.keys import HELP as KEYS_HELP
from runner.episodes.keys import Key, KeyReader
from runner.episodes.scenarios import PlannedEpisode, plan_episodes
from runner.schema.devices import SIM_OPERATOR, is_simulated

log = logging.getLogger("runner.record")

EPISODE_COLUMNS = [
    "attempt", "dataset_episode", "kept", "scenario", "instruction", "seed", "operator", "success",
    "end_reason", "frames", "duration_s", "achieved_fps", "period_p50_ms", "period_p99_ms", "late_frames",
    "validation", "repeated_frames",
]  # fmt: skip
# A realtime loop's frame is late when it starts more than this after its deadline (see _loop_figures).
LATE_S = 0.002
# A realtime loop that reaches less than BEHIND_SHARE of episode.fps over its last BEHIND_WINDOW_S of wall time
# ends the episode and stops the recording (see _check_keeping_up). Not 90 %: on a 2-core machine busy with a
# training run, the default 30 fps sim loop, which keeps up, dipped to 88 % over 2 s (a few 50-120 ms frames);
# a set-up that cannot keep up runs far below (7 fps of 200 with two 640x480 cameras, robot.render=full).
BEHIND_WINDOW_S = 2.0
BEHIND_SHARE = 0.8
# A camera that repeats more of an episode's frames than this is flagged (it delivers fewer than asked).
REPEATED_FRAMES_WARN = 0.1
# Give up after this many attempts in a row that fail validation: the setup, not the operator, is wrong.
MAX_CONSECUTIVE_REJECTS = 3
# Beside an episode's frames: its table rows, metadata, and the copies a save keeps to roll back.
EPISODE_RESERVE_BYTES = 5_000_000
# Keys a resumed recording may change; everything else must match the dataset being continued.
RESUMABLE_KEYS = ("episode.num_episodes", "episode.realtime", "episode.early_stop", "episode.reset_time_s")


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


class EpisodeTable:
    """episodes.csv: one row per attempt, written and synced as soon as the attempt ends."""

    def __init__(self, path: Path, copies: list[Path]) -> None:
        self.path, self.copies = path, copies
        self.rows: list[dict] = []
        if path.exists():
            with open(path, newline="") as f:
                self.rows = list(csv.DictReader(f))

    @property
    def attempts(self) -> int:
        return len(self.rows)

    def kept_rows(self) -> list[dict]:
        return [r for r in self.rows if r["kept"] == "True"]

    def trim_to(self, kept: int) -> None:
        """Forget kept rows the dataset does not have (the process died between saving the two)."""
        result, seen = [], 0
        for row in self.rows:
            if row["kept"] == "True":
                seen += 1
                if seen > kept:
                    continue
            result.append(row)
        self.rows = result
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append({k: str(v) for k, v in row.items()})
        self._write()

    def _write(self) -> None:
        for path in (self.path, *(copy for copy in self.copies if copy.parent.exists())):
            outputs.write_csv_atomic(path, EPISODE_COLUMNS, self.rows)


class EpisodesRejected(RuntimeError):
    """Validation rejected several attempts in a row: recording on would only waste the operator's time."""

    def __init__(self, count: int, failures: list[str], achieved_fps: float, cfg: DictConfig) -> None:
        hint = "check the cameras and the robot connection"
        if any(f.startswith("timestamp") for f in failures):
            hint = (
                f"the loop reached {achieved_fps:.1f} fps of the {cfg.episode.fps} asked: lower episode.fps, "
                "use fewer or smaller cameras, or allow late frames with a larger episode.timestamp_tolerance"
            )
        super().__init__(
            f"{count} episodes in a row failed validation ({'; '.join(failures)}); stopped recording: {hint}. "
            "Kept episodes are saved; continue with resume= once fixed"
        )


def _disk_full(run_id: str, root: Path, episode: int, total: int, kept: int, error: str | None,
               need: int) -> disk.DiskFull:  # fmt: skip
    free = disk.free_bytes(root) / disk.MB
    if error is None:
        what = (f"stopped before episode {episode}/{total}: the disk holding {root} has {free:.1f} MB free, and "
                f"one episode may need up to {need / disk.MB:.1f} MB")  # fmt: skip
    else:
        what = (f"the disk holding {root} filled up during episode {episode}/{total} "
                f"({error}); that episode was discarded")  # fmt: skip
    return disk.DiskFull(
        f"{what}. The {kept} episode(s) kept before it are saved and load. Free some space (or move the run "
        f"to a larger disk), then continue with `runner record resume={run_id}`"
    )


def _lost_row(attempt: int, planned: PlannedEpisode, operator: str, frames: int, reason: str, error) -> dict:
    """episodes.csv's row for an attempt that ended without an episode (its device or its disk gave out, or
    its loop fell behind)."""
    return {
        "attempt": attempt, "dataset_episode": "", "kept": False, "scenario": planned.scenario,
        "instruction": planned.instruction, "seed": planned.seed, "operator": operator, "success": "",
        "end_reason": reason, "frames": frames, "duration_s": "", "achieved_fps": "", "period_p50_ms": "",
        "period_p99_ms": "", "late_frames": "", "validation": str(error),
    }  # fmt: skip


class DeviceLost(ConnectionError):
    """An arm or camera stopped answering in the middle of an episode (cable pulled, power lost)."""

    def __init__(self, device: str, error: BaseException, detail: str = "") -> None:
        self.device = device
        super().__init__(f"{device} stopped answering{detail} ({str(error).strip().splitlines()[0]})")


def _device_lost(robot, teleop, cfg: DictConfig, error: BaseException) -> DeviceLost | None:
    """Which device failed: a camera (found on the error's traceback), else the arm whose call raised, naming
    its silent motors. None when the error is not a lost device."""
    from runner.lerobot_adapter import faults

    role = faults.camera_role(robot, error)
    if role is not None:
        return DeviceLost(f"the {role} camera ({cfg.cameras[role].type.value})", error)
    if not isinstance(error, ConnectionError):
        return None
    arm, arm_cfg = (teleop, cfg.teleop) if faults.raised_by(teleop, error) else (robot, cfg.robot)
    name = f"the {arm_cfg.get('role', 'leader')} arm ({arm_cfg.type})"
    silent, total = faults.silent_motors(arm)
    if not silent:
        return DeviceLost(name, error)
    if len(silent) == total:
        return DeviceLost(name, error, ": no motor answers (USB cable or power supply)")
    return DeviceLost(name, error, f": motor {', '.join(silent)} does not answer (its cable, or the servo)")


class RecordingStopped(RuntimeError):
    """The episode in progress was lost with its device; everything kept before it is saved."""

    def __init__(self, lost: DeviceLost, episode: int, total: int, kept: int, run_id: str) -> None:
        super().__init__(
            f"{lost} during episode {episode}/{total}. That episode was discarded; the {kept} kept before it "
            "are saved and load; torque release was attempted on the way out (run.log says if the arm did not "
            f"confirm it). Check the USB cable and the power supply, then continue with `runner record "
            f"resume={run_id}`"
        )


class FellBehind(RuntimeError):
    """A realtime loop ran well below episode.fps for seconds: its frames are not 1/fps apart."""

    def __init__(self, rate: float, fps: int) -> None:
        self.rate, self.fps = rate, fps
        super().__init__(
            f"fell behind: {rate:.1f} fps over the last {BEHIND_WINDOW_S:g} s of wall time, below "
            f"{BEHIND_SHARE:.0%} of the {fps} asked"
        )


class LoopTooSlow(RuntimeError):
    """The episode in progress was ended because its realtime loop fell behind; everything kept is saved."""

    def __init__(self, behind: FellBehind, cfg: DictConfig, episode: int, total: int, kept: int, run_id: str) -> None:
        sim = is_simulated(cfg.robot)
        changes = ["a lower episode.fps", "fewer or smaller cameras (cameras.<role>.width/height)"]
        if sim:
            if cfg.robot.get("render") == "full":
                changes.append("robot.render=fast")
            changes.append("episode.realtime=false (simulated time is exact however long a frame takes)")
        else:
            changes.append(
                "a machine not busy with other work (check the cameras deliver episode.fps with `runner doctor`)"
            )
        resume = (
            f"continue this run with `runner record resume={run_id} episode.realtime=false`, or start a new one"
            if sim
            else f"continue with `runner record resume={run_id}` once the machine keeps up, or start a new one"
        )
        before = f"the {kept} kept before it are saved and load" if kept else "no episode was kept before it"
        super().__init__(
            f"episode {episode}/{total}: the realtime loop reached {behind.rate:.1f} fps over its last "
            f"{BEHIND_WINDOW_S:g} s, below {BEHIND_SHARE:.0%} of the episode.fps={behind.fps} asked, so its frames "
            f"would not be 1/{behind.fps} s apart. That episode was ended and discarded; {before}. Ask less of "
            f"the loop: {', '.join(changes[:-1])} or {changes[-1]}. A resumed run keeps its fps, cameras and "
            f"render: {resume} with those changed"
        )


@dataclass
class EpisodeResult:
    frames: int
    duration_s: float
    success: bool | None
    end_reason: str
    stop: bool = False
    rerecord: bool = False


class Display:
    """A rich live line on a terminal; a log line per episode elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self.live = None
        if enabled:
            from rich.live import Live

            self.live = Live(refresh_per_second=4, transient=True)
            self.live.start()

    def update(self, text: str) -> None:
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(text))

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _record_episode(
    robot,
    teleop,
    recorder,
    frames_log,
    ticks: list[float],
    planned: PlannedEpisode,
    cfg: DictConfig,
    keys,
    display,
    header: str,
) -> EpisodeResult:
    """Run one episode's control loop; ``ticks`` gets the wall time (perf_counter) each frame starts at."""
    episode = cfg.episode
    period = 1.0 / episode.fps
    cap = max(1, round(episode.episode_time_s * episode.fps))
    idle_limit = None if episode.early_stop.idle_s is None else round(episode.early_stop.idle_s * episode.fps)
    threshold = episode.early_stop.idle_threshold_deg
    sim = is_simulated(cfg.robot)
    # The demonstration goes on past the moment of success, so that it shows the release and the retreat.
    after_success, succeeded_at = round(episode.early_stop.after_success_s * episode.fps), None
    idle_frames, previous_action = 0, None
    start = time.perf_counter()
    for index in range(cap):
        tick = time.perf_counter()
        ticks.append(tick)
        if episode.realtime:
            _check_keeping_up(ticks, episode.fps)
        try:
            observation = robot.get_observation()
            action = teleop.get_action()
            sent = robot.send_action(action)
        except (ConnectionError, TimeoutError, RuntimeError) as error:
            lost = _device_lost(robot, teleop, cfg, error)
            if lost is None:
                raise
            raise lost from error
        recorder.add_frame(observation, sent, planned.instruction)
        recorder.raise_write_error()  # a frame that could not be stored ends the episode now
        # Simulated time is exact whatever the wall clock does; a real robot's frames are as late as they came.
        timestamp = index * period if sim or not episode.realtime else tick - start
        frames_log.add(timestamp, observation, sent)
        frames = index + 1
        elapsed = time.perf_counter() - start
        display.update(f"{header} · {elapsed:5.1f}/{episode.episode_time_s:.0f} s · {frames / elapsed:4.1f} fps")

        key = keys.poll() if keys is not None and episode.early_stop.keys else None
        if key is Key.SUCCESS:
            return EpisodeResult(frames, elapsed, True, "success_key")
        if key is Key.FAILURE:
            return EpisodeResult(frames, elapsed, False, "failure_key")
        if key is Key.RERECORD:
            return EpisodeResult(frames, elapsed, None, "rerecord_key", rerecord=True)
        if key is Key.STOP:
            success = robot.is_success() if sim else None
            return EpisodeResult(frames, elapsed, success, "stop_key", stop=True)
        if sim and episode.early_stop.on_success and (succeeded_at is not None or robot.is_success()):
            succeeded_at = frames if succeeded_at is None else succeeded_at
            if frames - succeeded_at >= after_success:
                return EpisodeResult(frames, elapsed, True, "success")
        if idle_limit is not None:
            moved = previous_action is None or max(abs(action[k] - previous_action[k]) for k in action) > threshold
            idle_frames = 0 if moved else idle_frames + 1
            if idle_frames >= idle_limit:
                return EpisodeResult(frames, elapsed, robot.is_success() if sim else None, "idle")
        previous_action = action
        if episode.realtime:
            _sleep_until(tick + period)
    elapsed = time.perf_counter() - start
    return EpisodeResult(cap, elapsed, robot.is_success() if sim else None, "time_cap")


def _check_keeping_up(ticks: list[float], fps: int) -> None:
    """Raise FellBehind when the frames started over the last BEHIND_WINDOW_S of wall time came at less than
    BEHIND_SHARE of ``fps``. Checked at every frame once the window has passed since the second frame: the
    first frame's own period carries one-off costs (the first render, a camera's first read), and the loop
    never makes up for a late frame (each frame is due one period after the previous one started)."""
    now = ticks[-1]
    if len(ticks) < 3 or now - ticks[1] < BEHIND_WINDOW_S:
        return
    first = bisect.bisect_left(ticks, now - BEHIND_WINDOW_S, lo=1)
    if first >= len(ticks) - 1:  # a single frame took the whole window
        first = len(ticks) - 2
    rate = (len(ticks) - 1 - first) / (now - ticks[first])
    if rate < BEHIND_SHARE * fps:
        raise FellBehind(rate, fps)


def _loop_figures(ticks: list[float], fps: int, realtime: bool) -> dict[str, float | int | str]:
    """Median and 99th-percentile wall time between frame starts, and the late frames.

    Wall time (perf_counter at the top of each frame of the control loop), in simulation too: the frames' own
    timestamps are sim time there, exactly 1/fps apart however slowly the loop runs. A realtime loop sleeps
    until each frame's deadline, one period after the previous frame started; a frame is late when it starts
    more than LATE_S after that deadline (its period exceeds 1/fps by more than LATE_S). The first frame has
    no deadline. Without realtime there are no deadlines: the periods are how fast the loop ran, and
    late_frames is empty (not 0, which would claim every frame was on time)."""
    periods = [b - a for a, b in itertools.pairwise(ticks)]
    late = sum(p > 1.0 / fps + LATE_S for p in periods) if realtime else ""
    if not periods:
        return {"period_p50_ms": "", "period_p99_ms": "", "late_frames": late if ticks else ""}
    ordered = sorted(periods)
    p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
    return {"period_p50_ms": round(1000 * p50, 2), "period_p99_ms": round(1000 * p99, 2), "late_frames": late}


def _sleep_until(deadline: float) -> None:
    """Sleep coarsely, then spin the last 2 ms: time.sleep alone overshoots by up to a scheduler tick."""
    remaining = deadline - time.perf_counter()
    if remaining > 0.002:
        time.sleep(remaining - 0.002)
    while time.perf_counter() < deadline:
        pass


def _reset_period(seconds: float, keys, display) -> bool:
    """The reset between episodes on a real robot; returns True when the user asked to stop."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        display.update(f"reset the scene · {end - time.monotonic():4.1f} s · space to skip")
        key = keys.poll() if keys is not None else None
        if key is Key.SKIP:
            return False
        if key is Key.STOP:
            return True
        time.sleep(0.05)
    return False


def record(cfg: DictConfig, ctx: StageContext) -> None:
    from runner.episodes.validation import EpisodeLimits, FrameLog, check_episode
    from runner.hardware.checks import require_ready_arms
    from runner.lerobot_adapter import dataset_recorder, devices
    from runner.sim.world import Variation

    previous = None
    if cfg.resume is not None:
        previous = ctx.find_run("resume", cfg.resume, "record")
        cfg = resumed_config(previous, cfg, ctx.overrides, RESUMABLE_KEYS)
    _check_config(cfg)
    sim = is_simulated(cfg.robot)
    plan = record_plan(cfg)
    robot_config = devices.robot_config(cfg)
    teleop_config = devices.teleop_config(cfg)
    need = episode_bytes(cfg)
    disk.require_free(ctx.outputs_root if previous is None else previous.path, need,
                      f"one episode ({cfg.episode.episode_time_s:g} s of {len(cfg.cameras)} camera(s))")  # fmt: skip
    calibration = require_ready_arms(cfg)

    run: Run = ctx.resume_run(previous, cfg) if previous is not None else ctx.start_run()
    if calibration:
        run.update(calibration=calibration)
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
        table = EpisodeTable(run.dir / layout.EPISODES_CSV, [dataset_root / layout.DATASET_EPISODES_CSV])
        table.trim_to(recorder.num_episodes)
        run.add_artifact(layout.EPISODES_CSV)
        sizes = {role: (c.height, c.width) for role, c in cfg.cameras.items()}
        joints = list(robot.action_features)
        limits = EpisodeLimits(
            fps=cfg.episode.fps,
            min_frames=cfg.episode.min_frames,
            timestamp_tolerance=cfg.episode.timestamp_tolerance,
            max_frozen_frames=cfg.episode.max_frozen_frames,
            joint_limits=robot.joint_limits() if sim else {j: (-360, 360) for j in joints},
            cameras=tuple(sizes),
        )
        # The range each joint may take, for validation and for the dataset report's coverage plot.
        run.update(joint_limits={j: list(limits.joint_limits[j]) for j in joints if j in limits.joint_limits})
        operator = cfg.teleop.get("operator", "none")
        log.info("recording %d episodes (%d already kept) · %s", len(plan), recorder.num_episodes, KEYS_HELP)
        discarded = rejected_in_a_row = 0
        while recorder.num_episodes < len(plan):
            kept = recorder.num_episodes
            planned = plan[kept]
            if sim:
                robot.start_episode(planned.seed, Variation(**planned.variation))
            if cfg.teleop.type == SIM_OPERATOR:
                teleop.start_episode(planned.seed, practice=table.attempts)
            frames_log = FrameLog(sizes, joints, cfg.episode.early_stop.idle_threshold_deg)
            ticks: list[float] = []
            header = f"episode {kept + 1}/{len(plan)} · {planned.scenario}: {planned.instruction}"
            if disk.free_bytes(dataset_root) < need:
                raise _disk_full(run.id, dataset_root, kept + 1, len(plan), kept, None, need)
            log.info("%s · started", header)
            try:
                result = _record_episode(
                    robot, teleop, recorder, frames_log, ticks, planned, cfg, keys, display, header
                )
                failures = [] if result.rerecord else check_episode(frames_log.frame(), limits)
                keep = not result.rerecord and (not failures or cfg.episode.validation.value == "warn")
                if keep:
                    recorder.keep_episode()
            except DeviceLost as error:
                recorder.discard_episode()
                table.append(_lost_row(table.attempts, planned, operator, len(frames_log.rows), "device_lost", error))
                raise RecordingStopped(error, kept + 1, len(plan), recorder.num_episodes, run.id) from error
            except FellBehind as error:
                recorder.discard_episode()
                frames, duration = len(frames_log.rows), ticks[-1] - ticks[0]
                row = _lost_row(table.attempts, planned, operator, frames, "fell_behind", error)
                row.update(duration_s=round(duration, 3), achieved_fps=round(frames / max(duration, 1e-9), 2))
                table.append(row | _loop_figures(ticks[:-1], cfg.episode.fps, cfg.episode.realtime))
                log.error("%s · %d frames · %.1f s · %s · discarded", header, frames, duration, error)
                raise LoopTooSlow(error, cfg, kept + 1, len(plan), recorder.num_episodes, run.id) from error
            except Exception as error:
                full = disk.disk_error(error)
                if full is None:
                    raise
                recorder.discard_episode()  # frees the episode's staged frames first
                table.append(_lost_row(table.attempts, planned, operator, len(frames_log.rows), "disk_full", full))
                kept_now = recorder.num_episodes
                raise _disk_full(run.id, dataset_root, kept + 1, len(plan), kept_now, full, need) from error
            if not keep:
                recorder.discard_episode()
                discarded += 1
            rejected_in_a_row = rejected_in_a_row + 1 if failures and not keep else 0
            repeated = frames_log.repeated()
            table.append(
                {
                    "attempt": table.attempts,
                    "dataset_episode": kept if keep else "",
                    "kept": keep,
                    "scenario": planned.scenario,
                    "instruction": planned.instruction,
                    "seed": planned.seed,
                    "operator": operator,
                    "success": "" if result.success is None else result.success,
                    "end_reason": result.end_reason,
                    "frames": result.frames,
                    "duration_s": round(result.duration_s, 3),
                    "achieved_fps": round(result.frames / max(result.duration_s, 1e-9), 2),
                    **_loop_figures(ticks, cfg.episode.fps, cfg.episode.realtime),
                    "validation": "; ".join(failures) or "ok",
                    "repeated_frames": " ".join(f"{role}={count}" for role, count in repeated.items()),
                }
            )
            verdict = "kept" if keep else ("re-record" if result.rerecord else "discarded")
            for role, count in repeated.items():
                if count > REPEATED_FRAMES_WARN * result.frames:
                    log.warning(
                        "%s · the %s camera repeated %d of %d frames while the arm moved: it delivers fewer frames "
                        "than episode.fps asks (check it with `runner doctor`)", header, role, count, result.frames,
                    )  # fmt: skip
            log.info(
                "%s · %d frames · %.1f s · success=%s · ended by %s · %s%s",
                header, result.frames, result.duration_s, result.success, result.end_reason, verdict,
                f" ({'; '.join(failures)})" if failures else "",
            )  # fmt: skip
            if result.stop:
                break
            if rejected_in_a_row >= MAX_CONSECUTIVE_REJECTS:
                raise EpisodesRejected(rejected_in_a_row, failures, result.frames / max(result.duration_s, 1e-9), cfg)
            human_resets = not sim and cfg.episode.realtime
            more = recorder.num_episodes < len(plan)
            if human_resets and more and _reset_period(cfg.episode.reset_time_s, keys, display):
                break
        recorder.close()
        kept_rows = table.kept_rows()
        successes = sum(r["success"] == "True" for r in kept_rows)
        summary = {
            "target": len(plan),
            "kept": recorder.num_episodes,
            "discarded": discarded,
            "successes": successes,
            "complete": recorder.num_episodes >= len(plan),
        }
        run.update(episodes=summary, dataset={"repo_id": cfg.dataset.repo_id, "root": layout.DATASET_DIR})
        log.info(
            "recorded %d/%d episodes (%d discarded, %d successful) into %s",
            summary["kept"], summary["target"], discarded, successes, dataset_root,
        )  # fmt: skip
    finally:
        if recorder is not None:
            recorder.close()  # idempotent: drops an unfinished episode, keeps everything saved
        display.close()
        if keys is not None:
            keys.close()
        if teleop is not None:
            devices.release(teleop)
        devices.release(robot)  # torque off, or closed anyway when the arm no longer answers
