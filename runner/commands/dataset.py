"""``runner dataset drop|retask|split|merge``: a new dataset from record runs, each a run of its own (stage
``dataset``) that `runner train dataset_run=` takes like a recording. Everything is checked against the
sources' metadata before any run directory is made; the sources are never modified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.core import outputs
from runner.core.errors import ConfigError
from runner.core.logs import console_log

RUN_HELP = "a record or dataset run: an id, a prefix, or latest"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner dataset",
        description="Make a new dataset from record runs with LeRobot's dataset tools; runner's per-episode "
        "table (scenario, success, operator) goes with it. The sources are never modified.",
    )
    parser.add_argument("--outputs", type=Path, default=None, help="outputs root (default: RUNNER_OUTPUTS)")
    operations = parser.add_subparsers(dest="operation", required=True)
    drop = operations.add_parser("drop", help="drop the episodes matching every selector given")
    drop.add_argument("run", help=RUN_HELP)
    drop.add_argument("--episodes", help="episode indices, e.g. 0,3,7")
    drop.add_argument("--scenario", action="append", default=[], help="episodes of this scenario (repeatable)")
    drop.add_argument(
        "--where", action="append", default=[], help="COLUMN=VALUE of runner_episodes.csv, e.g. success=false"
    )
    drop.add_argument("--scene-unlike", type=int, metavar="EPISODE",
                      help="episodes whose start view differs from EPISODE's beyond the run's scene.* thresholds "
                      "(a camera moved, a target slid: see `runner report dataset`)")  # fmt: skip
    retask = operations.add_parser("retask", help="rewrite task strings (the most specific option wins)")
    retask.add_argument("run", help=RUN_HELP)
    retask.add_argument("--task", help="a new task string for every episode")
    retask.add_argument("--scenario", action="append", default=[], help="NAME=TEXT: for that scenario's episodes")
    retask.add_argument("--episode", action="append", default=[], help="INDEX=TEXT: for one episode")
    split = operations.add_parser("split", help="two runs: training episodes and held-out episodes")
    split.add_argument("run", help=RUN_HELP)
    split.add_argument("--held-out", type=float, help="the held-out share, chosen at random with --seed")
    split.add_argument("--held-out-episodes", help="the held-out episode indices, e.g. 2,9")
    split.add_argument("--seed", type=int, default=0, help="for --held-out (default 0)")
    merge = operations.add_parser("merge", help="the episodes of several runs, in the order given")
    merge.add_argument("runs", nargs="+", help=f"two or more: {RUN_HELP}")
    return parser


def main(argv: list[str]) -> int:
    from runner.curation import plans

    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    console_log()
    try:
        if args.operation == "merge":
            derived = [plans.plan_merge([plans.read_source(root, ref) for ref in args.runs])]
        else:
            source = plans.read_source(root, args.run)
            if args.operation == "drop":
                unlike = None if args.scene_unlike is None else plans.scene_unlike(source, args.scene_unlike)
                derived = [plans.plan_drop(source, args.episodes, args.scenario, args.where, unlike)]
            elif args.operation == "retask":
                derived = [plans.plan_retask(source, args.task, args.scenario, args.episode)]
            else:
                derived = plans.plan_split(source, args.held_out, args.held_out_episodes, args.seed)
    except ConfigError as error:
        print(f"runner dataset: {error}. Fix: {error.fix}.", file=sys.stderr)
        return 2
    from runner.curation.build import build

    for plan in derived:
        run_id = build(plan, ["runner", "dataset", *argv])
        part = f" ({plan.part})" if plan.part else ""
        print(f"dataset run {run_id}{part}: {len(plan.episodes)} episodes -> runner train dataset_run={run_id}")
    return 0
