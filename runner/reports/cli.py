"""``runner report KIND RUN...``: a report made from runs, written into a run of its own.

    runner report dataset <record-run>      what a recording holds (see runner/reports/dataset.py)

A utility command (no Hydra). Reports only read the runs they describe.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runner import outputs, provenance


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner report", description=__doc__.split("\n")[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    dataset = kinds.add_parser("dataset", help="episodes, durations, discards, joint coverage, jerk, frames, fps")
    dataset.add_argument("run", help="a record run: id, prefix, latest or latest:record")
    for sub in (dataset,):
        sub.add_argument("--outputs", type=Path, help="the outputs root (default: RUNNER_OUTPUTS or outputs/)")
        sub.add_argument("--json", action="store_true", help="print the report's numbers as JSON")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    try:
        run = outputs.resolve_run(root, args.run.removesuffix(":record"), stage="record")
    except outputs.RunReferenceError as error:
        print(f"runner report: {error} Give a record run id (see `runner runs --stage record`).", file=sys.stderr)
        return 2
    if not (run.path / "dataset" / "meta" / "info.json").exists():
        print(f"runner report: record run {run.id} ({run.status}) has no dataset yet.", file=sys.stderr)
        return 2
    from runner.reports import dataset

    run_dir, record = provenance.start_utility_run(root / run.experiment, "report", ["runner", "report", *argv],
                                                   [run.id])  # fmt: skip
    try:
        numbers = dataset.build(run.path, run_dir)
    except BaseException as error:
        record |= {"status": "failed", "ended_at": outputs.now_iso(),
                   "error": {"type": type(error).__name__, "message": str(error)}}  # fmt: skip
        outputs.write_json_atomic(run_dir / outputs.RUN_FILE, record)
        raise
    record |= {"status": "succeeded", "ended_at": outputs.now_iso(), "artifacts": numbers["files"],
               "report": {"kind": "dataset", "of": run.id}}  # fmt: skip
    outputs.write_json_atomic(run_dir / outputs.RUN_FILE, record)
    if args.json:
        print(json.dumps({**numbers, "report": record["id"], "dir": str(run_dir)}, indent=2))
    else:
        print(f"dataset report of {run.id}: {numbers['episodes']} episodes, {numbers['frames']} frames")
        print(f"written: {run_dir}/report.{{md,html,json}} and {len(numbers['files']) - 3} PNGs")
    return 0
