"""One Hydra job of a stage: checked, run, and its run record closed on every path."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.core import disk, outputs
from runner.core.context import StageContext, ValidationPassed
from runner.core.errors import StageFailed, is_config_error
from runner.core.job_checks import check_added_keys, check_complete, check_host_choice, scrub_secrets
from runner.core.redact import REDACTED, secret_values_in
from runner.core.stage import Stage

log = logging.getLogger("runner")


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that every stage unwinds the same way as on Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


def _job_context(stage: Stage, cfg: DictConfig, argv: list[str]) -> StageContext:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    experiment = hydra_cfg.runtime.choices.get("experiment") or outputs.DEFAULT_EXPERIMENT
    sweep = None
    if str(hydra_cfg.mode) == "RunMode.MULTIRUN":
        sweep_dir = Path(hydra_cfg.sweep.dir)
        sweep = {"id": sweep_dir.name, "dir": str(sweep_dir), "job": int(hydra_cfg.job.num)}
    return StageContext(
        stage=stage,
        cfg=cfg,
        experiment=experiment,
        outputs_root=Path(cfg.paths.outputs),
        sweep=sweep,
        argv=argv,
        # Unresolved: an override's value is text (`key=${...}`), not an interpolation of Hydra's own config.
        overrides=OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False),
    )


def parallel_jobs() -> int:
    """How many jobs of this sweep run at once on this machine (1 outside a sweep or with the basic launcher)."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    target = str(hydra_cfg.launcher.get("_target_", ""))
    if str(hydra_cfg.mode) != "RunMode.MULTIRUN":
        return 1
    cpus = os.cpu_count() or 1
    if "joblib" in target:
        n_jobs = int(hydra_cfg.launcher.get("n_jobs") or -1)
        return cpus if n_jobs < 0 else min(n_jobs, cpus)
    if target.endswith("submitit_launcher.LocalLauncher"):
        return cpus  # submitit starts every job of the sweep at once, each in its own process
    return 1  # basic launcher: one job at a time; SLURM: each job has its own allocation


def _check_job(stage: Stage, cfg: DictConfig, ctx: StageContext) -> None:
    from hydra.core.hydra_config import HydraConfig

    check_host_choice(ctx.overrides)
    check_added_keys(cfg, ctx.overrides, HydraConfig.get().runtime.choices.keys())
    check_complete(cfg, stage.uses)
    disk.require_writable(ctx.outputs_root)


def validate_job(stage: Stage, cfg: DictConfig, argv: list[str]) -> None:
    """Run a job's checks, the stage's own included, up to the point where it would start its run; nothing is
    created or moved. A sweep calls this for every job before its directory exists (runner's sweeper), so
    that one bad combination fails the whole sweep up front instead of mid-way."""
    ctx = _job_context(stage, cfg, argv)
    ctx.dry_run = True
    _check_job(stage, cfg, ctx)
    try:
        stage.load()(cfg, ctx)
    except ValidationPassed:
        return


def execute_job(stage: Stage, cfg: DictConfig, argv: list[str]) -> Any:
    """The Hydra task function body: validate, run the stage, and close its run record on every path."""
    try:
        previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (a threaded launcher): SIGTERM keeps its default
        previous_term = None
    ctx = _job_context(stage, cfg, argv)
    try:
        _check_job(stage, cfg, ctx)
        ctx.redactor.add_values(secret_values_in(OmegaConf.to_container(cfg, resolve=True)))
        for key in scrub_secrets(cfg, ctx.redactor):
            log.warning("`%s` held a secret (a token or key); it was replaced by %s", key, REDACTED)
        entry = stage.load()
        result = entry(cfg, ctx)
        if ctx.run is None:
            raise RuntimeError(f"stage {stage.name} returned without starting its run")
    except KeyboardInterrupt as interrupt:
        ctx.finish("interrupted", interrupt)
        raise
    except BaseException as error:
        ctx.finish("failed", error)
        if ctx.run is None or is_config_error(error):
            raise
        raise StageFailed(stage.name, ctx.run.dir, error) from error
    else:
        ctx.finish("succeeded")
        return result
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
