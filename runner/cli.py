"""``runner``: dispatch to a Hydra-composed stage or a utility command.

Kept import-light on purpose: ``runner --help`` and utility commands never import torch, lerobot or
Hydra; a stage imports what it needs only when it runs.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys

from runner import __version__
from runner.core.stage import Stage

# Stages that work today; each later stage joins this table when it is built.
STAGES: dict[str, Stage] = {
    "calibrate": Stage(
        "calibrate",
        "LeRobot's interactive calibration of the real arms named by robot=/teleop= (ports from the host profile)",
        "runner.stages.calibrate:calibrate",
        uses=("robot", "teleop", "host"),
    ),
    "teleoperate": Stage(
        "teleoperate",
        "the leader arm drives the follower at episode.fps with the loop rate shown; q stops (nothing recorded)",
        "runner.stages.teleoperate:teleoperate",
        uses=("robot", "teleop", "host", "episode"),
    ),
    "record": Stage(
        "record",
        "record demonstrations into a LeRobot dataset (simulated SO-101 by default)",
        "runner.stages.record:record",
        uses=("robot", "teleop", "cameras", "host", "task", "episode", "dataset"),
    ),
    "train": Stage(
        "train",
        "fine-tune ACT, Diffusion or SmolVLA on record runs with a checkpoint schedule (resume=, retention)",
        "runner.stages.train:train",
        uses=("policy", "train", "dataset"),
    ),
    "eval": Stage(
        "eval",
        "success rate with a 95 % CI on matched episodes: in simulation (-m sweeps), or blinded on a real arm",
        "runner.stages.eval:evaluate",
        uses=("robot", "cameras", "host", "task", "episode", "eval"),
        expand="runner.stages.eval.policies:expand_checkpoints",
    ),
    "serve": Stage(
        "serve",
        "serve a policy to a robot on another machine (LeRobot's async inference; loopback unless TLS and a token)",
        "runner.stages.serve:serve",
        uses=("serve", "episode"),
    ),
    "pipeline": Stage(
        "pipeline",
        "record -> train -> eval sweep over the checkpoints -> compare, each its own run (resume= skips done ones)",
        "runner.stages.pipeline:pipeline",
        uses=("robot", "teleop", "cameras", "task", "episode", "dataset", "policy", "train", "eval", "pipeline"),
    ),
}

# Utility commands: module with ``main(argv) -> int``, and a one-line summary.
COMMANDS: dict[str, tuple[str, str]] = {
    "runs": ("runner.commands.runs", "list runs, or show one: runs [--json] [--stage S] ... | runs show ID"),
    "compare": (
        "runner.commands.compare",
        "compare eval runs or a sweep: success rates, 95 % CIs, significance, differing config (csv/md/png)",
    ),
    "find-port": (
        "runner.commands.find_port",
        "find an arm's serial port by unplugging it; writes its stable path into the host profile",
    ),
    "find-cameras": (
        "runner.commands.find_cameras",
        "list cameras with the mode they really deliver and a snapshot each; writes their roles to the host profile",
    ),
    "doctor": ("runner.commands.doctor", "check this machine for what the stages need (exit 1 on a failed check)"),
    "report": (
        "runner.commands.reports.cli",
        "dataset RUN | operators RUN... | experiment NAME: pages of plots and tables",
    ),
    "viz": (
        "runner.commands.viz",
        "LeRobot's dataset visualiser (Rerun) on a record run's dataset or an eval run's rollouts",
    ),
    "check-scene": (
        "runner.commands.check_scene",
        "what each camera sees now beside what it saw in a recording: moved, turned, or a changed scene",
    ),
    "dataset": (
        "runner.commands.dataset",
        "drop | retask | split | merge: a new dataset from record runs (LeRobot's dataset tools); sources untouched",
    ),
    "push": (
        "runner.commands.push",
        "push a record run's dataset or a train run's checkpoints to the Hugging Face Hub (or finish a failed push)",
    ),
    "emulate": (
        "runner.commands.emulate",
        "serve emulated SO-101 arms (servo protocol on pseudo-terminals) and cameras for host=emulated",
    ),
}


def usage() -> str:
    width = max(len(name) for name in [*STAGES, *COMMANDS])
    lines = [
        f"runner {__version__}: a declarative YAML experiment runner for robot learning with LeRobot.",
        "",
        "usage: runner STAGE [key=value | group=option ...] [-m] [hydra flags]",
        "       runner COMMAND [args]",
        "",
        "Stages (Hydra-composed from conf/ and experiments/; try `runner STAGE --help` or `--cfg job`):",
    ]
    lines += [f"  {name:<{width}}  {stage.summary}" for name, stage in STAGES.items()] or ["  (none yet)"]
    lines += ["", "Commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += [
        "",
        "Examples:",
        "  runner STAGE experiment=sim_demo --cfg job     show the composed config",
        "  runner runs --stage record --limit 5          the five newest record runs",
        'Shell completion: eval "$(runner -sc install=bash)"',
    ]
    return "\n".join(lines)


def _complete(args: list[str]) -> int:
    """Hydra's shell completion, extended to complete the stage and command names first."""
    if args[1:] and args[1].startswith("query"):
        words = os.environ.get("COMP_LINE", "").split()
        line_ends_in_space = os.environ.get("COMP_LINE", "").endswith(" ")
        if len(words) == 1 or (len(words) == 2 and not line_ends_in_space):
            prefix = words[1] if len(words) == 2 else ""
            print(" ".join(n for n in [*STAGES, *COMMANDS] if n.startswith(prefix)))
            return 0
        stage = STAGES.get(words[1])
        if stage is None:
            return 0
        os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]]) + (" " if line_ends_in_space else "")
        from runner.core.command_line import run_stage_cli

        return run_stage_cli(stage, args)
    if not STAGES:
        print("runner: no stages to complete yet", file=sys.stderr)
        return 2
    from runner.core.command_line import run_stage_cli

    # install/uninstall: every stage's Hydra app prints the same script, bound to `runner`.
    return run_stage_cli(next(iter(STAGES.values())), args)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name == "--version":
        print(f"runner {__version__}")
        return 0
    if name in ("-sc", "--shell-completion"):
        return _complete(args)
    if name in STAGES:
        from runner.core.command_line import run_stage_cli

        return run_stage_cli(STAGES[name], rest)
    if name in COMMANDS:
        module, _ = COMMANDS[name]
        return importlib.import_module(module).main(rest)
    close = difflib.get_close_matches(name, [*STAGES, *COMMANDS], n=1)
    hint = f" Did you mean `runner {close[0]}`?" if close else ""
    print(f"runner: unknown stage or command '{name}'.{hint} See `runner --help`.", file=sys.stderr)
    return 2
