"""``runner report KIND RUN...``: a report made from runs, written into a run of its own.

    runner report dataset <record-run>                        what a recording holds
    runner report operators <record-run>... [--policy SWEEP]  how each operator learned (beside the policy)
    runner report experiment <name>                           its runs: record -> train -> eval, lineage

A utility command (no Hydra). Reports only read the runs they describe.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.commands.reports.page import Page
from runner.core import layout, outputs
from runner.core.run import Run, utility_run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner report", description=__doc__.split("\n")[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    dataset = kinds.add_parser("dataset", help="episodes, durations, discards, joint coverage, jerk, frames, fps")
    dataset.add_argument("runs", nargs=1, metavar="run", help="a record run: id, prefix or latest")
    operators = kinds.add_parser("operators", help="each operator's learning curve, fitted, beside the policy's")
    operators.add_argument("runs", nargs="+", metavar="run", help="record runs: ids, prefixes or latest")
    operators.add_argument("--policy", metavar="SWEEP", help="an eval sweep: the policy's success against step")
    experiment = kinds.add_parser("experiment", help="record, train and eval runs, lineage, what changed")
    experiment.add_argument("name", help="the experiment (its folder under the outputs root)")
    for sub in (dataset, operators, experiment):
        sub.add_argument("--outputs", type=Path, help="the outputs root (default: RUNNER_OUTPUTS or outputs/)")
        sub.add_argument("--json", action="store_true", help="print the report's numbers as JSON")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    if args.kind == "experiment":
        return _experiment(root, args, argv)
    runs = []
    try:
        for ref in args.runs:
            runs.append(outputs.resolve_run(root, ref.removesuffix(":record"), stage="record"))
    except outputs.RunReferenceError as error:
        print(f"runner report: {error} Give a record run id (see `runner runs --stage record`).", file=sys.stderr)
        return 2
    for run in runs:
        if (
            not (run.path / layout.EPISODES_CSV).exists()
            or not (run.path / layout.DATASET_DIR / layout.DATASET_INFO).exists()
        ):
            print(f"runner report: record run {run.id} ({run.status}) has no recorded episode yet.", file=sys.stderr)
            return 2
    if getattr(args, "policy", None):
        try:
            outputs.resolve_sweep(root, args.policy)
        except outputs.RunReferenceError as error:
            print(f"runner report: --policy: {error}", file=sys.stderr)
            return 2
    if args.kind == "dataset":
        from runner.commands.reports import dataset

        def build(out: Path):
            return dataset.build(runs[0].path, out)
    else:
        from runner.commands.reports import operators

        def build(out: Path):
            return operators.build(root, runs, out, args.policy)

    return _report(root / runs[0].experiment, [run.id for run in runs], [run.id for run in runs], build, args, argv)


def _report(
    parent: Path, parents: list[str], of: Any, build: Callable, args: argparse.Namespace, argv: list[str]
) -> int:
    """Make a report run in ``parent``: ``build(run_dir)`` writes the page; the run ends succeeded or failed."""
    with utility_run(parent, "report", ["runner", "report", *argv], parents) as run:
        run.update(report={"kind": args.kind, "of": of})
        numbers, page = build(run.dir)
        for name in numbers["files"]:
            run.add_artifact(name)
    _print(run, numbers, page, args)
    return 0


def _print(run: Run, numbers: dict, page: Page, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({**numbers, "report": run.id, "dir": str(run.dir)}, indent=2))
    else:
        page.print()
        print(f"\nwritten: {run.dir}/report.{{md,html,json}} and {len(numbers['files']) - 3} PNG(s)")


def _experiment(root: Path, args: argparse.Namespace, argv: list[str]) -> int:
    runs = [run for run in outputs.list_runs(root) if run.experiment == args.name]
    if not runs:
        known = sorted({run.experiment for run in outputs.list_runs(root)})
        print(f"runner report: no run of experiment '{args.name}' under {root} (experiments there: "
              f"{', '.join(known) or 'none'}).", file=sys.stderr)  # fmt: skip
        return 2
    from runner.commands.reports import experiment

    def build(out: Path):
        return experiment.build(root, args.name, out)

    return _report(root / args.name, [run.id for run in runs], args.name, build, args, argv)
