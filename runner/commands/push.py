"""``runner push RUN``: a record run's dataset, or a train run's checkpoints, to the Hugging Face Hub.

Also what finishes a push that failed at the end of a recording or a training (a hackathon's network comes
and goes): files already on the Hub are not sent again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.core import outputs
from runner.core.errors import ConfigError
from runner.core.logs import console_log


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner push",
        description="Push a record run's dataset (a dataset repo, tagged with LeRobot's codebase version) or a "
        "train run's checkpoints (a model repo, one tag step-NNNNNN per checkpoint) to the Hugging Face Hub. "
        "The token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT names another Hub.",
    )
    parser.add_argument("run", help="a record or train run: an id, a prefix, or latest")
    parser.add_argument("--checkpoint", default="last", help="train runs: a step, a comma list, last or all")
    parser.add_argument(
        "--repo-id",
        default=None,
        help="OWNER/NAME on the Hub (default: the run's dataset.hub_repo_id or dataset.repo_id; train.hub_repo_id)",
    )
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private",
        dest="private",
        action="store_true",
        default=None,
        help="create the repo private (default: the run's dataset.private / train.private)",
    )
    visibility.add_argument("--public", dest="private", action="store_false")
    parser.add_argument(
        "--force",
        action="store_true",
        help="push over a repo holding another dataset's features, or over a checkpoint tag with other weights",
    )
    parser.add_argument("--outputs", type=Path, default=None, help="outputs root (default: RUNNER_OUTPUTS)")
    return parser


def main(argv: list[str]) -> int:
    from runner.hub import access, push

    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    console_log()
    try:
        try:
            run = outputs.resolve_run(root, args.run)
        except outputs.RunReferenceError as error:
            raise ConfigError(
                "RUN", str(error).rstrip("."), "give a record or train run id (see `runner runs`)"
            ) from None
        if run.stage == "train":
            plan = push.plan_model_push(run, args.checkpoint, args.repo_id, args.private, args.force)
        else:
            plan = push.plan_dataset_push(run, args.repo_id, args.private, args.force)
        entry = push.push(plan, ["runner", "push", *argv])
    except (ConfigError, access.PushRefused) as error:
        print(
            f"runner push: {error}" + (f". Fix: {error.fix}." if isinstance(error, ConfigError) else ""),
            file=sys.stderr,
        )
        return 2
    except push.PushFailed as error:
        print(f"runner push: {error}", file=sys.stderr)
        return 1
    print(f"pushed {run.stage} run {run.id} to {entry['url']} at {entry['revision']} (commit {entry['commit']})")
    for step, revision in (entry.get("checkpoints") or {}).items():
        state = "already there" if revision.get("skipped") else "pushed"
        print(
            f"  checkpoint {step}: {revision['tag']} ({state}) -> runner eval eval.policy_path=hf:{plan.repo_id}@"
            f"{revision['tag']}"
        )
    return 0
