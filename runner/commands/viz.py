"""``runner viz <record-run|eval-run> [--episode N]``: LeRobot's dataset visualiser (Rerun) on a run's data.

A record run shows its dataset; an eval run its rollouts (saved with ``eval.save_rollouts=true``). Rerun is
LeRobot's ``viz`` extra: without it the command names what to install and opens nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from runner.core import layout, outputs

INSTALL = ".venv/bin/pip install 'lerobot[viz]'"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="runner viz", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a record or eval run: id, prefix, latest:record or latest:eval")
    parser.add_argument("--episode", type=int, default=0, help="the episode to show (default 0)")
    parser.add_argument("--outputs", type=Path, help="the outputs root (default: RUNNER_OUTPUTS or outputs/)")
    args = parser.parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    try:
        run = outputs.resolve_run(root, args.run)
    except outputs.RunReferenceError as error:
        print(f"runner viz: {error} Give a record or eval run id (see `runner runs`).", file=sys.stderr)
        return 2
    if run.stage == "record":
        data = run.path / layout.DATASET_DIR
        repo_id = yaml.safe_load((run.path / layout.CONFIG_YAML).read_text())["dataset"]["repo_id"]
    elif run.stage == "eval":
        data, repo_id = run.path / layout.EVAL_ROLLOUTS_DIR, "local/eval_rollouts"
    else:
        print(f"runner viz: {run.id} is a {run.stage} run; give a record or eval run.", file=sys.stderr)
        return 2
    if not (data / layout.DATASET_INFO).exists():
        hint = "evaluate with eval.save_rollouts=true" if run.stage == "eval" else "record at least one episode"
        print(f"runner viz: {run.id} has no dataset at {data}: {hint}.", file=sys.stderr)
        return 2
    from runner.lerobot_adapter import live_view

    if not live_view.available():
        print(f"runner viz: the viewer is Rerun (LeRobot's viz extra), which is not installed: {INSTALL}",
              file=sys.stderr)  # fmt: skip
        return 2
    live_view.show_dataset(data, repo_id, args.episode)
    return 0
