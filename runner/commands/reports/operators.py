"""``runner report operators <record-run>...``: how each operator improved over the episodes they recorded.

Per operator (the episodes.csv ``operator`` column), episodes are numbered by practice across the given
record runs in the order they were recorded (a second day continues the count). Time to complete is the
episode's length in frames / fps for the episodes labelled successful (all kept episodes when none are
labelled); success is plotted beside it. The power law of practice is fitted per operator
(``learning_curve``): its rate with a 95 % interval, fit quality (R²), and the episode after which one more
episode saves under 1 % of the time. With ``--policy <eval sweep>`` the policy's success rate against
training step is drawn beside the operators' curves: who learns the task faster.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runner.commands.reports.learning_curve import fit_power_law
from runner.commands.reports.page import Page, figure, save
from runner.core import layout, outputs


def _attempts(run: outputs.RunInfo) -> tuple[list[dict[str, str]], int]:
    with open(run.path / layout.EPISODES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    fps = yaml.safe_load((run.path / layout.CONFIG_YAML).read_text())["episode"]["fps"]
    return rows, int(fps)


def analyse(runs: list[outputs.RunInfo]) -> dict[str, Any]:
    """Per operator: practice index, time to complete, success; and the fitted learning curve."""
    operators: dict[str, dict[str, list]] = {}
    for run in sorted(runs, key=lambda r: r.record.get("started_at", "")):
        rows, fps = _attempts(run)
        for row in rows:
            if row["kept"] != "True":
                continue
            series = operators.setdefault(row["operator"], {"practice": [], "time_s": [], "success": [], "run": []})
            series["practice"].append(len(series["practice"]))
            series["time_s"].append(int(row["frames"]) / fps)
            series["success"].append({"True": True, "False": False}.get(row["success"]))
            series["run"].append(run.id)
    result = {}
    for name, series in operators.items():
        labelled = any(s is not None for s in series["success"])
        timed = [i for i, s in enumerate(series["success"]) if s or not labelled]
        entry: dict[str, Any] = {**series, "timed": timed, "fit": None}
        if len(timed) >= 3:
            fit = fit_power_law([series["practice"][i] for i in timed], [series["time_s"][i] for i in timed])
            low, high = fit.b_ci95
            entry["fit"] = {
                "a": round(fit.a, 4), "rate": round(fit.b, 4), "rate_ci95": [round(low, 4), round(high, 4)],
                "asymptote_s": round(fit.c, 4), "r2": round(fit.r2, 4), "plateau_episode": fit.plateau(),
                "improves": low > 0,
            }  # fmt: skip
        result[name] = entry
    return result


def _policy_curve(root: Path, sweep: str) -> list[tuple[int, float, float, float]]:
    """(training step, success rate, CI low, CI high) of an eval sweep, by step."""
    from runner.commands.compare import collect

    rows, _ = collect(root, [sweep])
    points = [(r.step, r.metrics["success_rate"], *r.metrics["ci95"]) for r in rows if r.step is not None]
    return sorted(points)


def build(root: Path, runs: list[outputs.RunInfo], out: Path, policy_sweep: str | None) -> tuple[dict[str, Any], Page]:
    """Analyse the record runs and write the report into ``out``; returns the numbers."""
    operators = analyse(runs)
    page = Page(f"Operator learning curves · {', '.join(r.id for r in runs)}")
    page.text(
        "Time to complete against episodes of practice, per operator, with the power law of practice "
        "T(n) = a (n + 1)^-rate + asymptote fitted to the timed episodes. The rate's interval is a 95 % "
        "bootstrap interval; an operator improves when it lies above zero. Plateau: the episode after which one "
        "more episode saves less than 1 % of the time."
    )
    rows = []
    for name, entry in operators.items():
        fit = entry["fit"]
        successes = [s for s in entry["success"] if s is not None]
        rate = f"{sum(successes)}/{len(successes)}" if successes else "unlabelled"
        if fit is None:
            rows.append([name, len(entry["practice"]), rate, "too few timed episodes", "", "", "", ""])
            continue
        low, high = fit["rate_ci95"]
        rows.append([name, len(entry["practice"]), rate, f"{fit['rate']:.2f} ({low:.2f} to {high:.2f})",
                     "yes" if fit["improves"] else "no", f"{fit['asymptote_s']:.1f} s", f"{fit['r2']:.2f}",
                     "" if fit["plateau_episode"] is None else fit["plateau_episode"]])  # fmt: skip
    page.heading("Fits")
    page.table(["operator", "episodes", "successes", "rate (95 % CI)", "improves", "asymptote", "R²", "plateau"],
               rows)  # fmt: skip
    policy = _policy_curve(root, policy_sweep) if policy_sweep else []
    panels = 3 if policy else 2
    fig, _ = figure(4.2 * panels, 3.4)
    fig.clf()
    time_ax = fig.add_subplot(1, panels, 1)
    success_ax = fig.add_subplot(1, panels, 2)
    for name, entry in operators.items():
        n = np.asarray(entry["practice"])
        t = np.asarray(entry["time_s"])
        timed = entry["timed"]
        (line,) = time_ax.plot(n[timed], t[timed], "o", label=name, alpha=0.8)
        if entry["fit"]:
            f = entry["fit"]
            grid = np.linspace(0, n.max(), 100)
            time_ax.plot(grid, f["a"] * (grid + 1) ** -f["rate"] + f["asymptote_s"], "-", color=line.get_color())
        labelled = [(i, s) for i, s in zip(n, entry["success"], strict=True) if s is not None]
        if labelled:
            xs, ys = zip(*labelled, strict=True)
            values = np.asarray(ys, dtype=float)
            window = [values[max(0, i - 1) : i + 2].mean() for i in range(len(values))]  # shorter at the ends
            success_ax.plot(xs, window, "-", color=line.get_color(), label=name)
    time_ax.set_xlabel("episodes of practice")
    time_ax.set_ylabel("time to complete (s)")
    time_ax.legend(fontsize=7)
    success_ax.set_xlabel("episodes of practice")
    success_ax.set_ylabel("success (running mean of 3)")
    success_ax.set_ylim(-0.05, 1.05)
    if policy:
        policy_ax = fig.add_subplot(1, panels, 3)
        steps, rates, lows, highs = (np.asarray(v) for v in zip(*policy, strict=True))
        policy_ax.errorbar(steps, rates, yerr=[rates - lows, highs - rates], fmt="o-", capsize=3, color="#8172b2")
        policy_ax.set_xlabel("training step")
        policy_ax.set_ylabel("policy success rate (95 % CI)")
        policy_ax.set_ylim(-0.05, 1.05)
    save(fig, out / "learning_curves.png")
    caption = "Operators: time to complete and success against practice"
    page.image("learning_curves.png", caption + ("; policy: success rate against training step" if policy else ""))
    numbers = {"runs": [r.id for r in runs], "operators": operators,
               "policy": [{"step": s, "success_rate": r} for s, r, _, _ in policy]}  # fmt: skip
    files = page.write(out)
    (out / layout.REPORT_JSON).write_text(json.dumps(numbers, indent=2))
    return {**numbers, "files": [*files, layout.REPORT_JSON]}, page
