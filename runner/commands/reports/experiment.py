"""``runner report experiment <name>``: one page for an experiment, record -> train -> eval, newest first.

Its record runs (episodes kept, successes), train runs (loss curves, checkpoints kept), eval sweeps (the
comparison table of ``runner compare`` and success against step with 95 % intervals), the lineage of its
runs drawn from their parents, and the config values that changed between runs of the same stage.
Reads run.json, .hydra/config.yaml, train/metrics.csv and eval/metrics.json only: no LeRobot, no torch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from runner.commands.compare import analyse, changed_values, collect, flat_config
from runner.commands.reports.page import Page, figure, save
from runner.core import layout, outputs

STAGE_ORDER = ["record", "train", "eval", "compare", "pipeline", "report"]


def _losses(run: outputs.RunInfo) -> tuple[list[int], list[float]]:
    path = run.path / layout.TRAIN_METRICS_CSV
    if not path.exists():
        return [], []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]  # a validation-only row has no training loss
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def _sweep_row(row) -> list[Any]:
    lo, hi = row.metrics["ci95"]
    versus = "best" if row.best else ("" if row.p_vs_best is None else f"{row.p_vs_best:.3g}")
    m = row.metrics
    return [row.run.id, row.step, m["n_episodes"], m["successes"], f"{m['success_rate']:.0%}", f"{lo:.0%}-{hi:.0%}",
            versus]  # fmt: skip


def _lineage(runs: list[outputs.RunInfo], path: Path) -> None:
    """Runs as boxes in columns by stage, oldest at the top, an arrow from each parent to its child."""
    stages = [s for s in STAGE_ORDER if any(r.stage == s for r in runs)]
    stages += sorted({r.stage for r in runs} - set(stages))
    position: dict[str, tuple[float, float]] = {}
    for column, stage in enumerate(stages):
        members = sorted((r for r in runs if r.stage == stage), key=lambda r: r.id)
        for row, run in enumerate(members):
            position[run.id] = (column, -row)
    height = max(1, max(-y for _, y in position.values()) + 1)
    fig, ax = figure(2.6 * len(stages), 0.55 * height + 1.2)
    for run in runs:
        for parent in run.record.get("parents", []):
            if parent in position:
                (x0, y0), (x1, y1) = position[parent], position[run.id]
                ax.annotate("", xy=(x1 - 0.38, y1), xytext=(x0 + 0.38, y0),
                            arrowprops={"arrowstyle": "->", "color": "#888", "lw": 0.8})  # fmt: skip
    colors = {"succeeded": "#dff0d8", "failed": "#f2dede", "interrupted": "#fcf8e3"}
    for run in runs:
        x, y = position[run.id]
        label = run.id.split("-", 3)[-1] if run.id.count("-") >= 3 else run.id
        ax.text(x, y, f"{label}\n{run.status}", ha="center", va="center", fontsize=6.5,
                bbox={"boxstyle": "round", "fc": colors.get(run.status, "#eeeeee"), "ec": "#999"})  # fmt: skip
    ax.set_xticks(range(len(stages)), stages)
    ax.set_yticks([])
    ax.set_xlim(-0.6, len(stages) - 0.4)
    ax.set_ylim(-height + 0.4, 0.6)
    ax.grid(False)
    save(fig, path)


def build(root: Path, experiment: str, out: Path) -> tuple[dict[str, Any], Page]:
    runs = [r for r in outputs.list_runs(root) if r.experiment == experiment and r.path != out]
    by_stage: dict[str, list[outputs.RunInfo]] = {}
    for run in runs:
        by_stage.setdefault(run.stage, []).append(run)
    page = Page(f"Experiment {experiment}")
    order = {stage: index for index, stage in enumerate(STAGE_ORDER)}
    counts = ", ".join(f"{len(by_stage[s])} {s}" for s in sorted(by_stage, key=lambda s: order.get(s, 99)))
    page.text(f"{len(runs)} runs under {root / experiment}: {counts}. Newest first in every table.")
    numbers: dict[str, Any] = {"experiment": experiment, "runs": [r.id for r in runs], "record": [], "train": [],
                               "sweeps": []}  # fmt: skip

    page.heading("Lineage")
    _lineage(runs, out / "lineage.png")
    page.image("lineage.png", "Runs by stage, oldest at the top; arrows go from a run to the runs made from it")

    page.heading("Record runs")
    rows = []
    for run in by_stage.get("record", []):
        episodes = run.record.get("episodes") or {}
        rows.append([run.id, run.status, episodes.get("kept"), episodes.get("target"), episodes.get("successes"),
                     episodes.get("discarded")])  # fmt: skip
        numbers["record"].append({"id": run.id, **episodes})
    page.table(["run", "status", "kept", "target", "successes", "discarded"], rows)

    page.heading("Train runs")
    rows = []
    fig, ax = figure()
    for run in by_stage.get("train", []):
        steps, losses = _losses(run)
        if steps:
            ax.plot(steps, losses, label=run.id.split("-", 3)[-1])
        kept = [c["step"] for c in run.record.get("checkpoints", []) if not c.get("deleted")]
        parents = ", ".join(run.record.get("parents", []))
        rows.append([run.id, run.status, parents, ", ".join(map(str, kept)), f"{losses[-1]:.4g}" if losses else ""])
        numbers["train"].append({"id": run.id, "checkpoints": kept, "final_loss": losses[-1] if losses else None})
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    if ax.get_lines():
        ax.legend(fontsize=7)
    save(fig, out / "loss.png")
    page.table(["run", "status", "trained on", "checkpoints kept", "final loss"], rows)
    page.image("loss.png", "Training loss of every train run (log scale)")

    page.heading("Eval sweeps")
    sweeps = [s for s in outputs.list_sweeps(root) if s.record.get("experiment") == experiment]
    sweeps = [s for s in sweeps if s.record.get("stage") == "eval"]
    if not sweeps:
        page.text("No eval sweep yet.")
    fig, ax = figure()
    for sweep in sweeps:
        try:
            compared, _ = collect(root, [sweep.id])
        except ValueError:
            continue  # a sweep with no successful eval run yet
        best = analyse(compared)
        page.text(f"Sweep {sweep.id}: best {best.run.id} ({best.metrics['success_rate']:.0%}).")
        page.table(["run", "step", "n", "successes", "rate", "95 % CI", "p vs best"], [_sweep_row(r) for r in compared])
        points = sorted((r.step, r.metrics["success_rate"], *r.metrics["ci95"]) for r in compared if r.step is not None)
        if points:
            steps, rates, lows, highs = (np.asarray(v) for v in zip(*points, strict=True))
            ax.errorbar(steps, rates, yerr=[rates - lows, highs - rates], fmt="o-", capsize=3,
                        label=sweep.id.split("-", 3)[-1])  # fmt: skip
        numbers["sweeps"].append({"id": sweep.id, "best": best.run.id, "rows": len(compared)})
    ax.set_xlabel("checkpoint step")
    ax.set_ylabel("success rate (95 % CI)")
    ax.set_ylim(-0.05, 1.05)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    save(fig, out / "success.png")
    page.image("success.png", "Success rate against checkpoint step, one line per eval sweep")

    page.heading("What changed between runs")
    numbers["changed"] = {}
    for stage in ("record", "train", "eval"):
        members = sorted(by_stage.get(stage, []), key=lambda r: r.id)
        changed = changed_values([flat_config(m) for m in members]) if len(members) > 1 else {}
        numbers["changed"][stage] = changed
        if changed:
            page.text(f"{stage} runs, oldest first:")
            page.table(["key", *[m.id.split("-", 3)[-1] for m in members]],
                       [[key, *[json.dumps(v) for v in values]] for key, values in changed.items()])  # fmt: skip
    if not any(numbers["changed"].values()):
        page.text("No config value differs between runs of the same stage.")
    files = page.write(out)
    (out / layout.REPORT_JSON).write_text(json.dumps(numbers, indent=2))
    return {**numbers, "files": [*files, layout.REPORT_JSON]}, page
