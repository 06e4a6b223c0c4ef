"""``runner report dataset <record-run>``: what a recording holds, at a glance.

Episodes per scenario and operator with their success labels, the episode durations, the attempts that
were discarded and why, how much of each joint's range the demonstrations cover, how smooth the actions
are (jerk), a contact sheet of first, middle and last frames per camera, the frame rate achieved, and whether
the scene drifted during the recording (each episode's start view against the first's, `runner.scene.drift`).
Numbers come from the run's episodes.csv and from the LeRobot dataset itself (read with LeRobot); the run
is only read. Writes report.{md,html,json} and PNGs into a run of its own.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner.commands.reports.page import Page, figure, save
from runner.core import layout

SAMPLE_EPISODES = 4


def _episodes_csv(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / layout.EPISODES_CSV, newline="") as f:
        return list(csv.DictReader(f))


def _jerk(actions: np.ndarray, fps: int) -> float:
    """Root-mean-square jerk (third derivative of the commanded joint positions), in units/s³."""
    if len(actions) < 4:
        return 0.0
    third = np.diff(actions, n=3, axis=0) * fps**3
    return float(np.sqrt(np.mean(third**2)))


def _discarded(row: dict[str, str]) -> dict[str, Any]:
    why = row["validation"] if row["validation"] != "ok" else row["end_reason"]
    return {"attempt": int(row["attempt"]), "scenario": row["scenario"], "end_reason": row["end_reason"], "why": why}


def analyse(run_dir: Path) -> dict[str, Any]:
    """Every number of the report, from the run's files and its LeRobot dataset."""
    from runner.lerobot_adapter.datasets import read_dataset

    record = json.loads((run_dir / layout.RUN_JSON).read_text())
    config = yaml.safe_load((run_dir / layout.CONFIG_YAML).read_text())
    attempts = _episodes_csv(run_dir)
    kept = [row for row in attempts if row["kept"] == "True"]
    tables = read_dataset(run_dir / layout.DATASET_DIR, config["dataset"]["repo_id"])
    fps, episode_of, states, actions = tables.fps, tables.episode_index, tables.state, tables.action

    groups: dict[tuple[str, str], dict[str, int]] = {}
    for row in kept:
        group = groups.setdefault((row["scenario"], row["operator"]), {"episodes": 0, "successes": 0, "labelled": 0})
        group["episodes"] += 1
        group["labelled"] += row["success"] in ("True", "False")
        group["successes"] += row["success"] == "True"
    limits = record.get("joint_limits") or {}
    coverage = {}
    for index, joint in enumerate(tables.joints):
        low, high = float(states[:, index].min()), float(states[:, index].max())
        limit = limits.get(f"{joint}.pos") or limits.get(joint)
        share = None if not limit else round((high - low) / (limit[1] - limit[0]), 4)
        coverage[joint] = {"min": round(low, 3), "max": round(high, 3), "limits": limit, "share": share}
    jerk = {int(e): round(_jerk(actions[episode_of == e], fps), 3) for e in np.unique(episode_of)}
    durations = [float(row["frames"]) / fps for row in kept]
    achieved = [float(row["achieved_fps"]) for row in kept if row.get("achieved_fps")]
    p99 = [float(row["period_p99_ms"]) for row in kept if row.get("period_p99_ms")]
    return {
        "run": record["id"],
        "experiment": record["experiment"],
        "fps": fps,
        "episodes": len(np.unique(episode_of)),
        "frames": len(episode_of),
        "attempts": len(attempts),
        "cameras": tables.cameras,
        "by_scenario_operator": [{"scenario": s, "operator": o, **g} for (s, o), g in sorted(groups.items())],
        "durations_s": durations,
        "discarded": [_discarded(r) for r in attempts if r["kept"] != "True"],
        "coverage": coverage,
        "jerk_rms": jerk,
        "achieved_fps": {"mean": round(statistics.fmean(achieved), 2), "min": min(achieved)} if achieved else None,
        "period_p99_ms_worst": max(p99) if p99 else None,
        "_tables": tables,
    }


def _contact_sheet(tables, path: Path) -> list[int]:
    """First, middle and last frame of each camera for a sample of episodes, as one image grid."""
    episode_of, cameras = tables.episode_index, tables.cameras
    episodes = sorted({int(e) for e in episode_of})
    if len(episodes) > SAMPLE_EPISODES:
        picks = np.linspace(0, len(episodes) - 1, SAMPLE_EPISODES).round().astype(int)
        episodes = [episodes[i] for i in picks]
    columns = [(camera, moment) for camera in cameras for moment in ("first", "middle", "last")]
    fig, _ = figure(1.6 * len(columns), 1.4 * len(episodes))
    fig.clf()
    for row, episode in enumerate(episodes):
        indices = np.flatnonzero(episode_of == episode)
        moments = {"first": indices[0], "middle": indices[len(indices) // 2], "last": indices[-1]}
        for column, (camera, moment) in enumerate(columns):
            ax = fig.add_subplot(len(episodes), len(columns), row * len(columns) + column + 1)
            ax.imshow(np.clip(tables.image(int(moments[moment]), camera), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{camera} · {moment}", fontsize=8)
            if column == 0:
                ax.set_ylabel(f"episode {episode}", fontsize=8)
    save(fig, path)
    return episodes


def _drift_section(page: Page, numbers: dict[str, Any], tables, run_dir: Path, out: Path) -> None:
    from runner.lerobot_adapter.datasets import first_frames
    from runner.scene.drift import first_changes, scene_drift, thresholds_of_run

    thresholds = thresholds_of_run(run_dir / layout.CONFIG_YAML)
    frames = first_frames(tables.dataset, sorted({int(e) for e in tables.episode_index}))
    drift = scene_drift(frames, thresholds)
    changes = first_changes(drift)
    numbers["scene_drift"] = {"thresholds": asdict(thresholds), "first_changed_episode": changes,
                              "episodes": [row.record() for row in drift]}  # fmt: skip
    page.heading("Scene drift")
    fig, (moved, changed) = figure(7, 4.2, rows=2)
    for camera in changes:
        rows = [row for row in drift if row.camera == camera]
        episodes = [row.episode for row in rows]
        moved.plot(episodes, [row.shift_px for row in rows], marker="o", label=camera)
        changed.plot(episodes, [100 * row.changed_fraction for row in rows], marker="o", label=camera)
    width = next(iter(frames.values()))[tables.cameras[0]].shape[1]
    moved.axhline(thresholds.max_shift * width, color="#999999", linestyle="--", linewidth=1)
    changed.axhline(100 * thresholds.max_changed, color="#999999", linestyle="--", linewidth=1)
    moved.set_ylabel("view moved (px)")
    changed.set_ylabel("changed (% of view)")
    changed.set_xlabel("episode (its first frame, against episode 0's)")
    moved.legend(fontsize=8)
    save(fig, out / "scene_drift.png")
    caption = (
        "Each episode's start view against the first episode's, per camera; dashed: the scene.* thresholds "
        "a session is held to. A random cube start gives the changed share a floor."
    )
    page.image("scene_drift.png", caption)
    words = [f"camera '{camera}' from episode {episode}" if episode is not None else f"camera '{camera}' never"
             for camera, episode in changes.items()]  # fmt: skip
    page.text("The view differs from episode 0's beyond the thresholds: " + "; ".join(words) + ".")


def build(run_dir: Path, out: Path) -> tuple[dict[str, Any], Page]:
    """Analyse the record run at ``run_dir`` and write the report into ``out``; returns the numbers."""
    numbers = analyse(run_dir)
    tables = numbers.pop("_tables")
    page = Page(f"Dataset report · {numbers['run']}")
    achieved, worst = numbers["achieved_fps"], numbers["period_p99_ms_worst"]
    summary = (
        f"{numbers['episodes']} episodes kept of {numbers['attempts']} attempts, {numbers['frames']} frames at "
        f"{numbers['fps']} fps, cameras: {', '.join(numbers['cameras']) or 'none'}."
    )
    if achieved:
        summary += f" Achieved {achieved['mean']} fps on average (slowest episode {achieved['min']})."
    if worst:
        summary += f" Worst 99th-percentile frame period: {worst} ms."
    page.text(summary)
    page.heading("Episodes per scenario and operator")
    page.table(
        ["scenario", "operator", "episodes", "successes", "labelled", "success rate"],
        [[g["scenario"], g["operator"], g["episodes"], g["successes"], g["labelled"],
          f"{g['successes'] / g['labelled']:.0%}" if g["labelled"] else ""]
         for g in numbers["by_scenario_operator"]],
    )  # fmt: skip
    page.heading("Episode durations")
    fig, ax = figure()
    ax.hist(numbers["durations_s"], bins=min(20, max(3, len(numbers["durations_s"]))), color="#4c72b0")
    ax.set_xlabel("episode duration (s)")
    ax.set_ylabel("episodes")
    save(fig, out / "durations.png")
    durations = numbers["durations_s"]
    page.image("durations.png", f"Durations of the kept episodes: median {statistics.median(durations):.1f} s, "
               f"range {min(durations):.1f}-{max(durations):.1f} s")  # fmt: skip
    page.heading("Discarded attempts")
    if numbers["discarded"]:
        rows = [[d["attempt"], d["scenario"], d["end_reason"], d["why"]] for d in numbers["discarded"]]
        page.table(["attempt", "scenario", "ended by", "why"], rows)
    else:
        page.text("None: every attempt was kept.")
    page.heading("Joint-range coverage")
    fig, ax = figure(7, 0.45 * len(numbers["coverage"]) + 1)
    for row, c in enumerate(numbers["coverage"].values()):
        if c["limits"]:
            ax.barh(row, c["limits"][1] - c["limits"][0], left=c["limits"][0], color="#dddddd", height=0.6)
        ax.barh(row, c["max"] - c["min"], left=c["min"], color="#55a868", height=0.35)
    ax.set_yticks(range(len(numbers["coverage"])), list(numbers["coverage"]))
    ax.set_xlabel("joint position (degrees; gripper 0-100): grey the robot's range, green the demonstrations'")
    save(fig, out / "coverage.png")
    page.image("coverage.png", "Range each joint covers in the demonstrations, against the robot's range")
    rows = [
        [joint, c["min"], c["max"], "" if not c["limits"] else f"{c['limits'][0]:g} to {c['limits'][1]:g}",
         "" if c["share"] is None else f"{c['share']:.0%}"]
        for joint, c in numbers["coverage"].items()
    ]  # fmt: skip
    page.table(["joint", "min", "max", "robot range", "covered"], rows)
    page.heading("Action smoothness")
    fig, ax = figure()
    ax.bar([str(e) for e in numbers["jerk_rms"]], list(numbers["jerk_rms"].values()), color="#c44e52")
    ax.set_xlabel("episode")
    ax.set_ylabel("RMS jerk of the actions (units/s³)")
    save(fig, out / "jerk.png")
    page.image("jerk.png", "Root-mean-square jerk of the commanded joint positions per episode: spikes are "
               "jittery or jumpy demonstrations")  # fmt: skip
    if numbers["cameras"]:
        page.heading("Contact sheet")
        shown = _contact_sheet(tables, out / "contact_sheet.png")
        numbers["contact_sheet_episodes"] = shown
        page.image("contact_sheet.png", f"First, middle and last frames of episodes {', '.join(map(str, shown))}")
        _drift_section(page, numbers, tables, run_dir, out)
    files = page.write(out)
    (out / layout.REPORT_JSON).write_text(json.dumps(numbers, indent=2))
    return {**numbers, "files": [*files, layout.REPORT_JSON]}, page
