"""One recording session's attempts, in plan order: each planned episode recorded, validated, kept or
discarded, and written to episodes.csv as it ends. A lost device, a loop that fell behind or a full disk
discards the attempt it interrupted, records why, and ends the session with every kept episode saved."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.core import disk
from runner.core.context import Run
from runner.episodes.keys import HELP as KEYS_HELP
from runner.episodes.scenarios import PlannedEpisode
from runner.episodes.table import EpisodesTable
from runner.schema.devices import SIM_OPERATOR
from runner.stages.record.failures import (
    DeviceLost,
    EpisodesRejected,
    FellBehind,
    LoopTooSlow,
    RecordingStopped,
    disk_full,
    lost_row,
)
from runner.stages.record.loop import Display, loop_figures, record_episode, reset_period

log = logging.getLogger("runner.record")

# A camera that repeats more of an episode's frames than this is flagged (it delivers fewer than asked).
REPEATED_FRAMES_WARN = 0.1
# Give up after this many attempts in a row that fail validation: the setup, not the operator, is wrong.
MAX_CONSECUTIVE_REJECTS = 3


@dataclass
class Attempts:
    """The devices, dataset and table of a session, and what its attempts have come to so far."""

    cfg: DictConfig
    run: Run
    plan: list[PlannedEpisode]
    robot: Any
    teleop: Any
    recorder: Any  # lerobot_adapter.dataset_recorder.DatasetRecorder
    table: EpisodesTable
    limits: Any  # episodes.validation.EpisodeLimits
    sizes: dict[str, tuple[int, int]]
    joints: list[str]
    keys: Any  # episodes.keys.KeyReader, or None without early-stop keys
    display: Display
    dataset_root: Path
    need: int  # the disk one episode may take
    sim: bool
    discarded: int = 0
    rejected_in_a_row: int = 0

    def record_all(self) -> None:
        """Attempts until the plan's episodes are kept, the operator stops, or a fault ends the session."""
        cfg, recorder = self.cfg, self.recorder
        log.info("recording %d episodes (%d already kept) · %s", len(self.plan), recorder.num_episodes, KEYS_HELP)
        while recorder.num_episodes < len(self.plan):
            result, failures = self._attempt(self.plan[recorder.num_episodes])
            if result.stop:
                break
            if self.rejected_in_a_row >= MAX_CONSECUTIVE_REJECTS:
                rate = result.frames / max(result.duration_s, 1e-9)
                raise EpisodesRejected(self.rejected_in_a_row, failures, rate, cfg)
            human_resets = not self.sim and cfg.episode.realtime
            more = recorder.num_episodes < len(self.plan)
            if human_resets and more and reset_period(cfg.episode.reset_time_s, self.keys, self.display):
                break

    def _attempt(self, planned: PlannedEpisode) -> tuple[Any, list[str]]:
        """One planned episode recorded and kept or discarded; its result and what validation found."""
        from runner.episodes.validation import FrameLog, check_episode
        from runner.sim.world import Variation

        cfg, recorder, table, plan = self.cfg, self.recorder, self.table, self.plan
        kept = recorder.num_episodes
        operator = cfg.teleop.get("operator", "none")
        if self.sim:
            self.robot.start_episode(planned.seed, Variation(**planned.variation))
        if cfg.teleop.type == SIM_OPERATOR:
            self.teleop.start_episode(planned.seed, practice=len(table.rows))
        frames_log = FrameLog(self.sizes, self.joints, cfg.episode.early_stop.idle_threshold_deg)
        ticks: list[float] = []
        header = f"episode {kept + 1}/{len(plan)} · {planned.scenario}: {planned.instruction}"
        if disk.free_bytes(self.dataset_root) < self.need:
            raise disk_full(self.run.id, self.dataset_root, kept + 1, len(plan), kept, None, self.need)
        log.info("%s · started", header)
        try:
            result = record_episode(self.robot, self.teleop, recorder, frames_log, ticks, planned, cfg, self.keys,
                                    self.display, header)  # fmt: skip
            failures = [] if result.rerecord else check_episode(frames_log.frame(), self.limits)
            keep = not result.rerecord and (not failures or cfg.episode.validation.value == "warn")
            if keep:
                recorder.keep_episode()
        except DeviceLost as error:
            recorder.discard_episode()
            table.append(lost_row(len(table.rows), planned, operator, len(frames_log.rows), "device_lost", error))
            raise RecordingStopped(error, kept + 1, len(plan), recorder.num_episodes, self.run.id) from error
        except FellBehind as error:
            recorder.discard_episode()
            frames, duration = len(frames_log.rows), ticks[-1] - ticks[0]
            row = lost_row(len(table.rows), planned, operator, frames, "fell_behind", error)
            row.update(duration_s=round(duration, 3), achieved_fps=round(frames / max(duration, 1e-9), 2))
            table.append(row | loop_figures(ticks[:-1], cfg.episode.fps, cfg.episode.realtime))
            log.error("%s · %d frames · %.1f s · %s · discarded", header, frames, duration, error)
            raise LoopTooSlow(error, cfg, kept + 1, len(plan), recorder.num_episodes, self.run.id) from error
        except Exception as error:
            full = disk.disk_error(error)
            if full is None:
                raise
            recorder.discard_episode()  # frees the episode's staged frames first
            table.append(lost_row(len(table.rows), planned, operator, len(frames_log.rows), "disk_full", full))
            kept_now = recorder.num_episodes
            raise disk_full(self.run.id, self.dataset_root, kept + 1, len(plan), kept_now, full, self.need) from error
        if not keep:
            recorder.discard_episode()
            self.discarded += 1
        self.rejected_in_a_row = self.rejected_in_a_row + 1 if failures and not keep else 0
        repeated = frames_log.repeated()
        row = _attempt_row(len(table.rows), planned, operator, result, keep, kept, failures, repeated)
        table.append(row | loop_figures(ticks, cfg.episode.fps, cfg.episode.realtime))
        _log_attempt(header, result, keep, failures, repeated)
        return result, failures


def _attempt_row(attempt: int, planned: PlannedEpisode, operator: str, result, keep: bool, kept: int,
                 failures: list[str], repeated: dict[str, int]) -> dict:  # fmt: skip
    """episodes.csv's row for an attempt that ended as an episode, kept or not (its loop figures apart)."""
    return {
        "attempt": attempt,
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
        "validation": "; ".join(failures) or "ok",
        "repeated_frames": " ".join(f"{role}={count}" for role, count in repeated.items()),
    }


def _log_attempt(header: str, result, keep: bool, failures: list[str], repeated: dict[str, int]) -> None:
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
