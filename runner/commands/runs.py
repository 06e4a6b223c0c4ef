"""``runner runs``: the run index, built from the run.json files of the outputs tree."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runner.core import layout, outputs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner runs",
        description="List runs newest first, or show one run (`runner runs show ID|PREFIX|latest|latest:STAGE`).",
    )
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("ref", nargs="?", help="with `show`: a run id, unique id prefix, latest or latest:<stage>")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--stage", help="only runs of this stage")
    parser.add_argument("--experiment", help="only runs of this experiment")
    parser.add_argument("--status", help="only runs with this status (running, succeeded, failed, interrupted, stale)")
    parser.add_argument("--limit", type=int, help="at most this many runs")
    parser.add_argument("--outputs", type=Path, help="outputs root (default: RUNNER_OUTPUTS or <repo>/outputs)")
    return parser


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "stale": "magenta", "running": "cyan"}


def _print_table(runs: list[outputs.RunInfo], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs under {root}", title_justify="left")
    for column in ("id", "stage", "experiment", "status", "started", "duration", "parents", "in"):
        table.add_column(column, overflow="fold")
    for run in runs:
        summary = run.summary()
        status = summary["status"]
        table.add_row(
            summary["id"],
            summary["stage"],
            summary["experiment"],
            f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]",
            summary["started_at"][5:19].replace("T", " "),
            _duration(summary["duration_s"]),
            ", ".join(summary["parents"]) or "-",
            _folder(run.path, root),
        )
    # A pipe gets the full width: ids and paths are for copying, not for wrapping.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _folder(path: Path, root: Path) -> str:
    """The folder holding a run, relative to the outputs root (``sim_demo/`` or ``sim_demo/<sweep>/``)."""
    parent = path.parent
    return f"{parent.relative_to(root)}/" if parent.is_relative_to(root) else f"{parent}/"


def _show(run: outputs.RunInfo, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**run.record, "status": run.status, "path": str(run.path)}, indent=2, default=str))
        return
    from rich.console import Console
    from rich.pretty import Pretty
    from rich.table import Table

    record = run.record
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(show_header=False, title=f"run {run.id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    git = record.get("git") or {}
    packages = record.get("packages") or {}
    host = record.get("host") or {}
    rows = {
        "stage": run.stage,
        "experiment": run.experiment,
        "status": run.status,
        "started / ended": f"{run.started_at} / {record.get('ended_at') or '-'}",
        "duration": _duration(run.duration_s),
        "path": str(run.path),
        "command": " ".join(record.get("argv", [])),
        "overrides": " ".join(record.get("overrides", [])) or "-",
        "parents": ", ".join(record.get("parents", [])) or "-",
        "sweep": json.dumps(record.get("sweep")) if record.get("sweep") else "-",
        "git": f"{git.get('commit') or git.get('note', '-')}" + (" (dirty, see git.diff)" if git.get("dirty") else ""),
        "packages": ", ".join(f"{k} {v}" for k, v in packages.items() if v),
        "host": " · ".join(
            [
                str(host.get("hostname")),
                str(host.get("os")),
                str(host.get("cpu")),
                ", ".join(host.get("gpu") or []) or "no gpu",
            ]
        ),
        "artifacts": ", ".join(record.get("artifacts", [])) or "-",
    }
    if record.get("episodes"):
        rows["episodes"] = ", ".join(f"{k} {v}" for k, v in record["episodes"].items())
    if record.get("checkpoints"):
        rows["checkpoints"] = ", ".join(
            f"{c['step']} ({c['size_mb']:.0f} MB{', deleted' if c.get('deleted') else ''})"
            for c in record["checkpoints"]
        )
    if record.get("metrics"):
        m = record["metrics"]
        lo, hi = m["ci95"]
        rows["eval"] = (
            f"step {m.get('checkpoint_step')}: {m['successes']}/{m['n_episodes']} = {m['success_rate']:.0%} "
            f"(95 % CI {lo:.0%}-{hi:.0%})"
        )
    if record.get("pipeline"):
        rows["pipeline"] = record["pipeline"]
    if record.get("children"):
        rows["children"] = ", ".join(
            f"{stage} {child.get('run') or child.get('sweep')}" for stage, child in record["children"].items()
        )
    if record.get("inputs"):
        rows["inputs"] = ", ".join(f"{i['hub']} {i['repo_id']}@{i['commit']} (asked {i['revision']})"
                                   for i in record["inputs"])  # fmt: skip
    if record.get("hub"):
        hub = record["hub"]
        rows["pushed to"] = f"{hub['url']} at {hub.get('revision', '-')} (commit {hub.get('commit', '-')})"
    if record.get("pushes"):
        rows["pushes"] = "; ".join(
            f"{p['status']} {p['repo_id']}@{p.get('revision', '-')} commit {p.get('commit', '-')} (run {p.get('run')})"
            + (f": {p['error']}" if p.get("error") else "")
            for p in record["pushes"]
        )
    if record.get("error"):
        rows["error"] = f"{record['error'].get('type')}: {record['error'].get('message')}"
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)
    config_file = run.path / layout.CONFIG_YAML
    if config_file.exists():
        import yaml

        config = yaml.safe_load(config_file.read_text()) or {}
        summary = {group: _choice_summary(config.get(group)) for group in config}
        console.print("config (groups at a glance; full file: .hydra/config.yaml):")
        console.print(Pretty(summary))


def _choice_summary(node: object) -> object:
    """The few values that identify a group option, so `show` fits on a screen."""
    if isinstance(node, dict):
        for key in ("type", "name", "repo_id"):
            if key in node:
                return node[key]
        return {k: v for k, v in node.items() if not isinstance(v, (dict, list))}
    return node


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = (args.outputs or outputs.default_outputs_root()).expanduser().resolve()
    if args.action == "show":
        if not args.ref:
            print("runner runs show: give a run id, a unique prefix, latest or latest:<stage>", file=sys.stderr)
            return 2
        try:
            run = outputs.resolve_run(root, args.ref)
        except outputs.RunReferenceError as error:
            print(f"runner runs show: {error}", file=sys.stderr)
            return 1
        _show(run, args.json)
        return 0
    runs = outputs.list_runs(root)
    wanted = {"stage": args.stage, "experiment": args.experiment, "status": args.status}
    runs = [r for r in runs if all(v is None or getattr(r, k) == v for k, v in wanted.items())]
    if args.limit is not None:
        runs = runs[: args.limit]
    if args.json:
        # One run per line: readable, and json's C encoder (indent= falls back to the slow Python one).
        print("[\n" + ",\n".join(json.dumps(r.summary()) for r in runs) + "\n]")
    else:
        _print_table(runs, root)
    return 0
