"""How a recording stops short, each with the one paragraph that says what is kept and how to go on: a lost
device, a full disk, a loop that fell behind, episodes rejected in a row."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from runner.core import disk
from runner.episodes.scenarios import PlannedEpisode
from runner.schema.devices import is_simulated

# A realtime loop that reaches less than BEHIND_SHARE of episode.fps over its last BEHIND_WINDOW_S of wall time
# ends the episode and stops the recording (see _check_keeping_up). Not 90 %: on a 2-core machine busy with a
# training run, the default 30 fps sim loop, which keeps up, dipped to 88 % over 2 s (a few 50-120 ms frames);
# a set-up that cannot keep up runs far below (7 fps of 200 with two 640x480 cameras, robot.render=full).
BEHIND_WINDOW_S = 2.0
BEHIND_SHARE = 0.8


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


def disk_full(run_id: str, root: Path, episode: int, total: int, kept: int, error: str | None,
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


def lost_row(attempt: int, planned: PlannedEpisode, operator: str, frames: int, reason: str, error) -> dict:
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


def device_lost(robot, teleop, cfg: DictConfig, error: BaseException) -> DeviceLost | None:
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
