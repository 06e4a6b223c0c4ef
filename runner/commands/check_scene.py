"""``runner check-scene RUN [key=value ...]``: what each camera sees now beside what it saw in a recording.

RUN is a record run, or a train run (its training recording). The config is composed as a stage composes
it (robot, cameras, host, task, scene thresholds), so the same overrides apply. In simulation the world is
drawn from the recording's first episode's start state; on real arms, put the arm at its start pose and
the scene as it is set up for a session first. Writes a run of its own (stage check-scene, RUN its parent)
with an overlay per camera; exits 0 when the scene is unchanged, 1 when it changed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runner.core import layout, outputs
from runner.core.errors import ConfigError, format_config_error, is_config_error

STAGE = "check-scene"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"runner {STAGE}", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a record run (or a train run): an id, a prefix, latest:record")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for a stage (robot=..., cameras=...)")
    parser.add_argument("--outputs", type=Path, default=None, help="outputs root (default: RUNNER_OUTPUTS)")
    return parser


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from runner.core.conf import CONF_DIR, register_resolvers
    from runner.schema import check_bounds, register_schemas

    register_schemas()
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    check_bounds(cfg)
    return cfg


def _recording(root: Path, ref: str) -> tuple[outputs.RunInfo, Path]:
    from runner.lerobot_adapter.checkpoints import training_dataset

    try:
        run = outputs.resolve_run(root, ref)
    except outputs.RunReferenceError as error:
        raise ConfigError("RUN", str(error).rstrip("."), "give a record run id (see `runner runs`)") from None
    if run.stage == "record":
        return run, run.path / layout.DATASET_DIR
    if run.stage == "train":
        from runner.lerobot_adapter.checkpoints import PRETRAINED, checkpoints

        saved = checkpoints(run.path / layout.TRAIN_DIR)
        dataset = training_dataset(saved[max(saved)] / PRETRAINED) if saved else None
        if dataset is not None:
            return run, dataset
        raise ConfigError("RUN", f"is train run {run.id}, whose training recording is not on this machine",
                          "give the record run itself")  # fmt: skip
    raise ConfigError("RUN", f"is {run.id}, a {run.stage} run", "give a record run, or a train run")


def main(argv: list[str]) -> int:
    from runner.core.run import utility_run
    from runner.scene.check import CameraUnusable
    from runner.scene.sources import NoReference, check_now, save_to_run

    args = _parser().parse_args(argv)
    root = args.outputs or outputs.default_outputs_root()
    os.environ.setdefault("RUNNER_STAGE", STAGE)
    try:
        cfg = _compose(args.overrides)
        recording, dataset = _recording(root, args.run)
        check, recorded, live = check_now(cfg, dataset)
    except (NoReference, CameraUnusable) as error:
        print(f"runner {STAGE}: cannot compare the scene: {error}. Fix: record with the cameras this config has, "
              "or pass the cameras= the recording used.", file=sys.stderr)  # fmt: skip
        return 2
    except Exception as error:
        if not is_config_error(error):
            raise
        print(format_config_error(error, f"runner {STAGE} RUN"), file=sys.stderr)
        return 2
    with utility_run(root / recording.experiment, STAGE, ["runner", STAGE, *argv], [recording.id]) as run:
        save_to_run(run, run.dir, "check", check, recorded, live)
    for camera in check.cameras:
        d = camera.difference
        verdict = "; ".join(camera.problems) or "unchanged"
        print(f"{camera.role:>6}: shift {d.shift_px:.1f} px, rotation {d.rotation_deg:+.1f} deg, changed "
              f"{d.changed_fraction:.2%}, similarity {d.similarity:.3f} -> {verdict}")  # fmt: skip
    print(f"against {check.reference}; overlays: {run.dir}/{layout.SCENE_OVERLAY.format(role='<camera>')}")
    return 1 if check.changed else 0
