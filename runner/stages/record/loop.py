"""One episode's control loop: observe, act, store a frame, at episode.fps in wall time (realtime) or as fast
as it goes; ended by a key, idleness, the simulator's success signal or the time cap. Also the loop's timing
figures and the check that a realtime loop keeps up."""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass

from omegaconf import DictConfig

from runner.episodes.keys import Key
from runner.episodes.scenarios import PlannedEpisode, max_frames
from runner.schema.devices import is_simulated
from runner.stages.record.failures import BEHIND_SHARE, BEHIND_WINDOW_S, FellBehind, device_lost

# A realtime loop's frame is late when it starts more than this after its deadline (see _loop_figures).
LATE_S = 0.002


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


def record_episode(
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
    cap = max_frames(episode)
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
            lost = device_lost(robot, teleop, cfg, error)
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


def loop_figures(ticks: list[float], fps: int, realtime: bool) -> dict[str, float | int | str]:
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


def reset_period(seconds: float, keys, display) -> bool:
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
