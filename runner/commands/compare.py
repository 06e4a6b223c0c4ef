"""``runner compare``: eval runs side by side, with their uncertainty and what differs between them.

One row per eval run (a sweep contributes each job's latest successful run): checkpoint step, episodes,
successes, success rate with its Wilson 95 % interval, mean reward and episode time, and only the config
values that differ between the runs. The best row is marked, and its lead over every other row is tested
with a one-sided Fisher exact test on the two success counts; rows evaluated on other seeds than the best
row are flagged as not comparable. Writes comparison.{csv,md,png} into a run directory of its own.
A utility command: no torch, no Hydra.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.core import layout, outputs
from runner.core.run import utility_run
from runner.stats import fisher_exact

ALPHA = 0.05
TEST_NAME = "one-sided Fisher exact test on the success counts, alpha 0.05"
# Config keys that say where or how a run was started, not what was evaluated.
NOISE_KEYS = ("paths.", "sweep.", "resume", "eval.checkpoint", "pipeline.", "hydra.")
# Remote inference (eval.inference=remote): the link each run's actions came over; None for a local policy.
LINK_METRICS = ["inference", "latency_ms_p50", "latency_ms_p99", "underruns", "control_hz"]
METRIC_COLUMNS = ["run", "policy", "checkpoint_step", "n_episodes", "successes", "success_rate", "ci95_lo",
                  "ci95_hi", "mean_sum_reward", "mean_episode_s", "val_loss", "best", "p_vs_best",
                  "lead_significant", "comparable", *LINK_METRICS]  # fmt: skip


@dataclass
class Row:
    run: outputs.RunInfo
    metrics: dict[str, Any]
    config: dict[str, Any]
    best: bool = False
    p_vs_best: float | None = None
    comparable: bool = True
    differing: dict[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> str:
        return self.metrics.get("policy_run") or Path(self.metrics.get("policy_path", "?")).parent.name

    @property
    def step(self) -> int | None:
        return self.metrics.get("checkpoint_step")

    def values(self) -> dict[str, Any]:
        lo, hi = self.metrics["ci95"]
        significant = None if self.best or self.p_vs_best is None else self.p_vs_best < ALPHA
        return {
            "run": self.run.id, "policy": self.policy, "checkpoint_step": self.step,
            "n_episodes": self.metrics["n_episodes"], "successes": self.metrics["successes"],
            "success_rate": round(self.metrics["success_rate"], 4), "ci95_lo": lo, "ci95_hi": hi,
            "mean_sum_reward": self.metrics["mean_sum_reward"], "mean_episode_s": self.metrics["mean_episode_s"],
            "val_loss": self.metrics.get("val_loss"), "best": self.best,
            "p_vs_best": None if self.p_vs_best is None else float(f"{self.p_vs_best:.4g}"),
            "lead_significant": significant, "comparable": self.comparable,
            **{key: self.metrics.get(key) for key in LINK_METRICS}, **self.differing,
        }  # fmt: skip


class CompareError(ValueError):
    """A reference that names nothing comparable; the message says what to give instead."""


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat |= _flatten(value, f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): node}


def flat_config(run: outputs.RunInfo) -> dict[str, Any]:
    """A run's saved config as dotted keys (``eval.n_episodes``: 10); empty when it has none."""
    config_file = run.path / layout.CONFIG_YAML
    return _flatten(yaml.safe_load(config_file.read_text())) if config_file.exists() else {}


def _row(run: outputs.RunInfo) -> Row | None:
    metrics_file = run.path / layout.EVAL_METRICS_JSON
    if run.stage != "eval" or run.status != "succeeded" or not metrics_file.exists():
        return None
    return Row(run, json.loads(metrics_file.read_text()), flat_config(run))


def collect(root: Path, refs: list[str]) -> tuple[list[Row], list[str]]:
    """The rows for sweep and run references, and notes on the runs left out (failed, unfinished, ...)."""
    rows: list[Row] = []
    skipped: list[str] = []
    for ref in refs:
        sweep = None
        if not ref.startswith("latest") or ref == "latest-sweep":
            try:
                sweep = outputs.resolve_sweep(root, ref)
            except outputs.RunReferenceError as error:
                if ref == "latest-sweep":
                    raise CompareError(str(error)) from None
        if sweep is not None:
            latest_per_job: dict[tuple, Row] = {}
            for run in sweep.runs():  # oldest first: a retried job's newer success wins
                row = _row(run)
                if row is None:
                    skipped.append(f"{run.id} ({run.status})")
                    continue
                latest_per_job[tuple(sorted(run.record.get("overrides", [])))] = row
            if not latest_per_job:
                raise CompareError(f"sweep {sweep.id} has no successful eval run")
            rows += latest_per_job.values()
            continue
        try:
            run = outputs.resolve_run(root, ref, stage="eval")
        except outputs.RunReferenceError as error:
            raise CompareError(str(error)) from None
        row = _row(run)
        if row is None:
            raise CompareError(f"eval run {run.id} is {run.status} and has no metrics to compare")
        rows.append(row)
    unique = {row.run.id: row for row in rows}
    return sorted(unique.values(), key=lambda r: (r.policy, r.step if r.step is not None else -1, r.run.id)), skipped


def analyse(rows: list[Row]) -> Row:
    """Mark the best row, test its lead over each other row, flag rows on other seeds; returns the best."""
    best = max(rows, key=lambda r: (r.metrics["success_rate"], r.metrics["mean_sum_reward"], -(r.step or 0)))
    best.best = True
    for row in rows:
        row.comparable = row.metrics.get("seeds") == best.metrics.get("seeds")
        if row is not best and row.comparable:
            a, b = best.metrics, row.metrics
            row.p_vs_best = fisher_exact(a["successes"], a["n_episodes"], b["successes"], b["n_episodes"])
    for key, values in changed_values([row.config for row in rows]).items():
        for row, value in zip(rows, values, strict=True):
            row.differing[key] = value
    return best


def changed_values(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The flat config keys whose values differ between configs (bookkeeping keys aside): key -> values."""
    keys = sorted({k for config in configs for k in config if not k.startswith(NOISE_KEYS)})
    changed = {}
    for key in keys:
        values = [config.get(key) for config in configs]
        if len({json.dumps(v, sort_keys=True) for v in values}) > 1:
            changed[key] = values
    return changed


def _markdown(rows: list[Row], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.values().get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _plot(rows: list[Row], best: Row, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4), dpi=100)
    policies = sorted({r.policy for r in rows})
    for index, policy in enumerate(policies):
        series = [r for r in rows if r.policy == policy]
        colour = f"C{index}"
        stepped = [r for r in series if r.step is not None]
        if stepped:
            x = [r.step for r in stepped]
            y = [r.metrics["success_rate"] for r in stepped]
            errors = [[v - r.metrics["ci95"][0] for v, r in zip(y, stepped, strict=True)],
                      [r.metrics["ci95"][1] - v for v, r in zip(y, stepped, strict=True)]]  # fmt: skip
            axis.errorbar(x, y, yerr=errors, marker="o", capsize=4, color=colour, label=policy)
        for row in series:
            if row.step is None:  # a policy folder without steps: a reference line with its CI band
                rate, (lo, hi) = row.metrics["success_rate"], row.metrics["ci95"]
                axis.axhline(rate, color=colour, linestyle="--", label=f"{policy} (policy folder)")
                axis.axhspan(lo, hi, color=colour, alpha=0.1)
    if best.step is not None:
        axis.plot([best.step], [best.metrics["success_rate"]], marker="*", markersize=16, color="gold",
                  markeredgecolor="black", linestyle="none", label="best")  # fmt: skip
    axis.set(xlabel="checkpoint step", ylabel="success rate", ylim=(-0.05, 1.05),
             title="success rate with Wilson 95 % CI")  # fmt: skip
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}")
    figure.savefig(temporary, format="png")
    plt.close(figure)
    temporary.replace(path)


def _print_table(rows: list[Row], best: Row, differing: list[str], skipped: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="eval runs compared", title_justify="left")
    remote = any(row.metrics.get("inference") in ("remote", "rtc") for row in rows)
    link = ["latency p50/p99 ms", "underruns", "Hz"] if remote else []
    for column in ["run", "policy", "step", "n", "succ.", "rate", "95 % CI", "reward", "ep. s", "val loss", "vs best"]:
        numeric = column in ("step", "n", "succ.", "rate", "reward", "ep. s", "val loss")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for column in link:
        table.add_column(column, justify="right", no_wrap=True)
    for column in differing:  # config values may be long paths: these columns wrap
        table.add_column(column, overflow="fold")
    for row in rows:
        m = row.metrics
        if row.best:
            verdict = "best"
        elif not row.comparable:
            verdict = "not comparable (other seeds)"
        else:
            verdict = f"p={row.p_vs_best:.3f}" + (" *" if row.p_vs_best < ALPHA else "")
        table.add_row(
            row.run.id, row.policy, "" if row.step is None else str(row.step), str(m["n_episodes"]),
            str(m["successes"]), f"{m['success_rate']:.0%}", f"{m['ci95'][0]:.0%}-{m['ci95'][1]:.0%}",
            f"{m['mean_sum_reward']:.2f}", f"{m['mean_episode_s']:.1f}",
            "" if m.get("val_loss") is None else f"{m['val_loss']:.4f}", verdict,
            *(_link_cells(m) if remote else ()), *(str(row.differing.get(k)) for k in differing),
            style="bold" if row.best else None,
        )  # fmt: skip
    # Piped into a file or a log, rich would squeeze the table into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 220)
    console.print(table)
    console.print(f"vs best: {TEST_NAME}; * marks a lead that is significant.")
    if skipped:
        console.print(f"left out (no metrics): {', '.join(skipped)}")


def _link_cells(metrics: dict) -> tuple[str, str, str]:
    def cell(key: str) -> str:
        return "" if metrics.get(key) is None else str(metrics[key])

    if metrics.get("inference") != "remote":  # no link: where the policy ran instead of its latency
        return metrics.get("inference") or "local", cell("underruns"), cell("control_hz")
    return f"{cell('latency_ms_p50')}/{cell('latency_ms_p99')}", cell("underruns"), cell("control_hz")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner compare",
        description="Compare eval runs: success rates with 95 % CIs, the best row and whether its lead is "
        "significant, and only the config values that differ.",
    )
    parser.add_argument("refs", nargs="+", help="sweep ids, latest-sweep, or eval run ids/prefixes")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--outputs", type=Path, default=None, help="outputs root (default: RUNNER_OUTPUTS)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    try:
        rows, skipped = collect(root, args.refs)
    except CompareError as error:
        reason = str(error).rstrip(".")
        print(f"runner compare: {reason}. Give a sweep id, latest-sweep or eval run ids (see `runner runs`).",
              file=sys.stderr)  # fmt: skip
        return 2
    best = analyse(rows)
    differing = sorted({k for row in rows for k in row.differing})
    experiments = {row.run.experiment for row in rows}
    experiment = experiments.pop() if len(experiments) == 1 else "default"
    argv = ["runner", "compare", *argv]
    with utility_run(root / experiment, "compare", argv, [r.run.id for r in rows]) as run:
        run_dir = run.dir
        columns = [*METRIC_COLUMNS, *differing]
        csv_file, markdown_file, plot_file = (run_dir / name for name in layout.COMPARISON_FILES)
        outputs.write_csv_atomic(csv_file, columns, [row.values() for row in rows])
        markdown = (
            f"# Comparison {run_dir.name}\n\n{_markdown(rows, columns)}\n\n"
            f"Best: **{best.run.id}** ({best.metrics['success_rate']:.0%}). p_vs_best: {TEST_NAME}. "
            "CI: Wilson score interval, 95 %. Rows with comparable=False were evaluated on other seeds than the "
            "best row.\n"
        )
        outputs.write_text_atomic(markdown_file, markdown)
        _plot(rows, best, plot_file)
        for name in layout.COMPARISON_FILES:
            run.add_artifact(name)
        run.update(comparison={"best": best.run.id, "rows": len(rows), "test": TEST_NAME, "skipped": skipped})
    if args.json:
        print(json.dumps({"run": run.id, "dir": str(run_dir), "best": best.run.id, "test": TEST_NAME,
                          "rows": [row.values() for row in rows], "skipped": skipped}, indent=2))  # fmt: skip
    else:
        _print_table(rows, best, differing, skipped)
        print(f"written: {', '.join(layout.COMPARISON_FILES)} in {run_dir}")
    return 0
