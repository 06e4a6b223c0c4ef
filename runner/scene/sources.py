"""What a scene check compares: the recording's view (its first kept episode's first frames, the arm at its start
pose) and the view now, with the arm at its start pose too (in simulation: the same start state, drawn with
today's config, so that only what changed in the set-up differs)."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from runner.core import layout
from runner.core.run import Run
from runner.scene.check import SceneCheck, Thresholds, check_scene, save_overlays
from runner.schema.devices import camera_moves, is_simulated


@dataclass(frozen=True)
class Recorded:
    """A recording's view: each camera's first frame of one episode, and how that episode started."""

    description: str
    frames: dict[str, np.ndarray]
    seed: int | None  # simulation: the episode's seed (its start state); None when not recorded
    scenario: str | None


class NoReference(ValueError):
    """A recording with nothing to compare with (no kept episode, no camera)."""


def recorded_view(dataset_root: Path) -> Recorded:
    """The first kept episode of the dataset at ``dataset_root`` (a record run's, or a Hub snapshot)."""
    from runner.lerobot_adapter.datasets import episode_first_frames

    info_path = dataset_root / layout.DATASET_INFO
    if not info_path.exists():
        raise NoReference(f"{dataset_root} holds no LeRobot dataset")
    info = json.loads(info_path.read_text())
    if not info.get("total_episodes"):
        raise NoReference(f"the recording at {dataset_root} kept no episode")
    if not any(f.get("dtype") in ("video", "image") for f in info["features"].values()):
        raise NoReference(f"the recording at {dataset_root} has no camera")
    seed = scenario = None
    table = dataset_root / layout.DATASET_EPISODES_CSV
    if table.exists():
        with open(table) as f:
            first = next((r for r in csv.DictReader(f) if r["kept"] == "True" and r["dataset_episode"] == "0"), None)
        if first is not None:
            seed, scenario = int(first["seed"]), first["scenario"]
    frames = episode_first_frames(dataset_root, "local/scene_check", [0])[0]
    return Recorded(f"episode 0 of {dataset_root.parent.name}", frames, seed, scenario)


def sim_view(cfg: DictConfig, seed: int) -> dict[str, np.ndarray]:
    """Each camera's first frame of an episode starting from ``seed``, in the world ``cfg`` describes now (its
    camera moves, render quality and the task's scenario layout)."""
    from runner.episodes.scenarios import plan_episodes
    from runner.sim.world import PickPlaceWorld, Variation

    sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
    world = PickPlaceWorld(sizes, control_dt=1.0 / cfg.episode.fps, render=cfg.robot.render.value,
                           camera_moves=camera_moves(cfg.robot))  # fmt: skip
    try:
        [planned] = plan_episodes(cfg.task, [seed], count_key="scene_check")
        world.reset(seed, Variation(**planned.variation))
        return {role: world.render(role) for role in sizes}
    finally:
        world.close()


# The simulated scene checks this process made: (recording, world) -> (check, recorded view, view now).
_SIM_CHECKS: dict[tuple, tuple[SceneCheck, Recorded, dict[str, np.ndarray]]] = {}


def check_in_sim(cfg: DictConfig, dataset_root: Path) -> tuple[SceneCheck, Recorded, dict[str, np.ndarray]]:
    """The recording's view against the simulated world's now (drawn from the recorded episode's start state).

    The simulator draws the same world from the same config, so a process checks it once per recording and
    world: a sweep over checkpoints checks every job before it starts, and a process running several jobs
    would otherwise draw and compare the same scene each time."""
    world = [OmegaConf.to_yaml(cfg[key]) for key in ("robot", "cameras", "task", "scene")]
    info = dataset_root / layout.DATASET_INFO
    written = info.stat().st_mtime_ns if info.exists() else None  # a recording resumed since is checked again
    key = (str(dataset_root.resolve()), written, cfg.episode.fps, cfg.episode.seed, *world)
    if key in _SIM_CHECKS:
        check, recorded, live = _SIM_CHECKS[key]
        return dataclasses.replace(check, seconds=0.0), recorded, live  # what this check took: nothing
    _SIM_CHECKS[key] = _check(
        cfg, dataset_root, lambda r: sim_view(cfg, r.seed if r.seed is not None else cfg.episode.seed)
    )
    return _SIM_CHECKS[key]


def check_on_cameras(cfg: DictConfig, dataset_root: Path) -> tuple[SceneCheck, Recorded, dict[str, np.ndarray]]:
    """The recording's view against the real (or emulated) cameras' now; the arm should stand at its start pose."""
    return _check(cfg, dataset_root, lambda _: camera_view(cfg))


def _check(cfg: DictConfig, dataset_root: Path, view_now: Callable[[Recorded], dict[str, np.ndarray]]
           ) -> tuple[SceneCheck, Recorded, dict[str, np.ndarray]]:  # fmt: skip
    """Each camera of ``view_now`` judged by ``cfg.scene`` against the recording's first frames."""
    started = time.perf_counter()
    recorded = recorded_view(dataset_root)
    live = view_now(recorded)
    check = check_scene(recorded.description, recorded.frames, live, Thresholds.of(cfg.scene))
    check.seconds = time.perf_counter() - started
    return check, recorded, live


def check_now(cfg: DictConfig, dataset_root: Path) -> tuple[SceneCheck, Recorded, dict[str, np.ndarray]]:
    """The recording's view against the world ``cfg`` names now: the simulator's, or the cameras'."""
    return (check_in_sim if is_simulated(cfg.robot) else check_on_cameras)(cfg, dataset_root)


def save_to_run(run: Run, folder: Path, mode: str, check: SceneCheck, recorded: Recorded,
                live: dict[str, np.ndarray]) -> None:  # fmt: skip
    """An overlay per camera into ``folder`` (artifacts of ``run``), and the result into its run.json."""
    save_overlays(check, recorded.frames, live, folder, run.dir)
    for camera in check.cameras:
        run.add_artifact(camera.overlay)
    run.update(scene_check=record_of(check, mode))


def record_of(check: SceneCheck | None, mode: str) -> dict[str, Any]:
    """run.json's and metrics.json's ``scene_check``."""
    return {"mode": mode, **check.record()} if check is not None else {"mode": mode, "checked": False}


def camera_view(cfg: DictConfig) -> dict[str, np.ndarray]:
    """One frame from each real (or emulated) camera of ``cfg``, opened through LeRobot as the robot opens it."""
    from runner.lerobot_adapter import devices, hardware
    from runner.scene.check import CameraUnusable

    frames = {}
    for role in cfg.cameras:
        try:
            before, frames[role] = hardware.capture_frames(devices.camera_config(cfg, role))
        except Exception as error:  # LeRobot's camera errors: not found, busy, no frame in time
            raise CameraUnusable(role, f"gives no frame ({type(error).__name__}: {error})") from None
        if np.array_equal(before, frames[role]):  # a sensor's noise makes two live frames differ
            raise CameraUnusable(role, "delivers the same image frame after frame (a frozen stream: unplug and "
                                       "replug it, or restart the program holding it)")  # fmt: skip
    return frames
