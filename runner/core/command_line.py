"""``runner <stage> ...``: the command line rewritten for Hydra, run, and its outcome mapped to an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.core import outputs
from runner.core.conf import CONF_DIR, compose_config, register_resolvers
from runner.core.errors import ConfigError, StageFailed, format_config_error, is_config_error
from runner.core.jobs import Terminated, execute_job
from runner.core.stage import Stage
from runner.core.sweeps import STAGE_ENV, SWEEP_DIR_ENV, SWEEP_ID_ENV, SWEEP_RESUME_ENV


def _override_value(args: list[str], key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
    return values[-1] if values else None


def outputs_root_for(args: list[str]) -> Path:
    """The outputs root a command line will use, before Hydra composes it."""
    given = _override_value(args, "paths.outputs")
    return Path(given) if given else outputs.default_outputs_root()


def _resumed_sweep_args(stage: Stage, args: list[str]) -> list[str]:
    """``sweep.resume=<sweep>``: replay that sweep's arguments in its own directory; only launcher flags may
    be added. Jobs that already succeeded are not launched again (runner's sweeper, hydra_plugins/)."""
    ref = _override_value(args, "sweep.resume")
    if ref in (None, "null"):
        return args
    try:
        sweep = outputs.resolve_sweep(outputs_root_for(args), ref)
    except outputs.RunReferenceError as error:
        raise ConfigError("sweep.resume", str(error).rstrip("."), "give a sweep id (see `runner runs`)") from None
    if sweep.record.get("stage") not in (None, stage.name):
        raise ConfigError(
            "sweep.resume",
            f"names a sweep of `runner {sweep.record['stage']}`, not of `runner {stage.name}`",
            f"run `runner {sweep.record['stage']} sweep.resume={sweep.id}`",
        )
    allowed = ("sweep.resume=", "hydra/launcher=", "hydra.launcher.", "-m", "--multirun", "paths.outputs=")
    extra = [a for a in args if not a.startswith(allowed)]
    if extra:
        raise ConfigError(
            extra[0].split("=", 1)[0],
            f"cannot be given with sweep.resume: the sweep replays its own ({' '.join(sweep.record['args'])})",
            "drop it; only hydra/launcher=... and hydra.launcher.* may change when resuming a sweep",
        )
    launcher = [a for a in args if a.startswith(("hydra/launcher=", "hydra.launcher."))]
    replaced = ("sweep.resume=", "hydra/launcher=", "hydra.launcher.") if launcher else ("sweep.resume=",)
    replay = [a for a in sweep.record["args"] if not a.startswith(replaced)]
    replay += [*launcher, f"sweep.resume={sweep.id}"]
    os.environ[SWEEP_DIR_ENV] = sweep.location
    os.environ[SWEEP_RESUME_ENV] = sweep.id
    print(f"runner {stage.name}: resuming sweep {sweep.id} (jobs that succeeded are skipped)", file=sys.stderr)
    return replay if "-m" in replay or "--multirun" in replay else ["-m", *replay]


def compose_without_sweeps(args: list[str]) -> tuple[DictConfig, set[str]] | None:
    """The config a command line composes to, ignoring its sweep overrides (and Hydra's own); plus the
    keys it sweeps. None when it does not compose: the real run will report why."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # Hydra's own settings do not change the config, except where it searches for config files.
    hydra_own = ("-", "hydra.", "hydra/", "~hydra")
    candidates = [a for a in args if "=" in a and (a.startswith("hydra.searchpath=") or not a.startswith(hydra_own))]
    try:
        parsed = OverridesParser.create().parse_overrides(candidates)
        swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
        plain = [a for a, o in zip(candidates, parsed, strict=True) if not o.is_sweep_override()]
        return compose_config(plain), swept
    except Exception:
        return None


def _lost_job_message(stage: Stage, error: Exception) -> str:
    """A submitit job that ended without a result: its process was killed, ran out of memory or of time."""
    sweep = Path(os.environ.get(SWEEP_DIR_ENV, "?")).name
    cause = " ".join(str(error).strip().splitlines()[:2]) or type(error).__name__
    return (
        f"runner {stage.name}: a job of sweep {sweep} ended without a result ({cause}). Its log is in "
        f"the sweep's .submitit/ folder; the runs that finished are kept. `runner {stage.name} "
        f"sweep.resume={sweep}` launches only the jobs that did not succeed."
    )


class _ConfigAsksForMultirun(Exception):
    """A config file sets ``hydra.mode: MULTIRUN`` and the command line has no -m."""


@contextlib.contextmanager
def _mode_from_the_command_line(multirun: bool) -> Iterator[None]:
    """Run or sweep as -m says, without Hydra composing the whole config once more only to read ``hydra.mode``
    (a third of a bad-input refusal's time; 0.1-0.3 s of every run). A config file that sets ``hydra.mode:
    MULTIRUN`` is still honoured: the run's own composition finds it, and the command runs again as a sweep."""
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    get_mode, run = Hydra.get_mode, Hydra.run

    def mode(self: Hydra, config_name: str | None, overrides: list[str]) -> RunMode | None:
        if any(o.lstrip("+").startswith("hydra.mode=") for o in overrides):
            return get_mode(self, config_name, overrides)
        # None: Hydra adds hydra.mode=RUN or =MULTIRUN (as -m says) to the overrides itself.
        return None if multirun else RunMode.RUN

    def run_as_configured(self: Hydra, *args: Any, **kwargs: Any) -> Any:
        compose = self.compose_config

        def compose_a_run(*compose_args: Any, **compose_kwargs: Any) -> DictConfig:
            cfg = compose(*compose_args, **compose_kwargs)
            if cfg.hydra.mode == RunMode.MULTIRUN:
                raise _ConfigAsksForMultirun()
            return cfg

        self.compose_config = compose_a_run
        try:
            return run(self, *args, **kwargs)
        finally:
            del self.compose_config

    Hydra.get_mode, Hydra.run = mode, run_as_configured
    try:
        yield
    finally:
        Hydra.get_mode, Hydra.run = get_mode, run


def run_stage_cli(stage: Stage, args: list[str]) -> int:
    """``runner <stage> [overrides] [-m] [hydra flags]``: compose with Hydra, run, return an exit code."""
    from runner.schema import register_schemas

    register_schemas()
    register_resolvers()
    os.environ[SWEEP_ID_ENV] = outputs.new_id(f"{stage.name}-sweep")
    os.environ[STAGE_ENV] = stage.name
    for name in (SWEEP_DIR_ENV, SWEEP_RESUME_ENV):
        os.environ.pop(name, None)
    # Hydra prints its own errors unless this is set; we want them, to name the key and the fix. Restored
    # after the run, so that a second call in the same process still formats its errors.
    given = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return _run_stage(stage, args, full_error=given == "1")
    finally:
        if given is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = given


def _run_stage(stage: Stage, args: list[str], full_error: bool) -> int:
    import hydra

    try:
        args = _resumed_sweep_args(stage, args)
        if stage.expand is not None and not any(a.startswith("-sc") or a == "--shell-completion" for a in args):
            args = stage.load_expand()(args)
    except Exception as error:
        if full_error or not is_config_error(error):
            raise
        print(format_config_error(error, f"runner {stage.name}"), file=sys.stderr)
        return 2
    # argparse cannot take overrides on both sides of a flag (`a=1 -m b=2`): runner accepts -m anywhere.
    if "-m" in args or "--multirun" in args:
        args = ["-m", *(a for a in args if a not in ("-m", "--multirun"))]
    argv = ["runner", stage.name, *args]

    failures: list[Exception] = []

    def task(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        try:
            return execute_job(stage, cfg, argv)
        except Exception as failure:
            if str(HydraConfig.get().mode) == "RunMode.MULTIRUN":
                raise  # the launcher names the failing job and stops the sweep
            if not (isinstance(failure, StageFailed) or is_config_error(failure)):
                raise
            failures.append(failure)  # reported below as one paragraph, not through Hydra's error path
            return None

    task.runner_stage, task.runner_argv = stage, argv  # read by runner's sweeper to check jobs before launch

    main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)
    saved_argv = sys.argv
    sys.argv = ["runner", *args]
    try:
        with _mode_from_the_command_line(multirun=args[:1] == ["-m"]):
            main()
    except _ConfigAsksForMultirun:
        return _run_stage(stage, ["-m", *args], full_error)
    except KeyboardInterrupt as interrupt:
        print(f"runner {stage.name}: interrupted ({interrupt or 'Ctrl-C'})", file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) else 130
    except StageFailed as failure:
        if full_error:
            raise
        print(failure.explain(), file=sys.stderr)
        return 1
    except Exception as error:
        if not full_error and type(error).__module__.startswith("submitit."):
            print(_lost_job_message(stage, error), file=sys.stderr)
            return 1
        if full_error or not is_config_error(error):
            raise
        print(format_config_error(error, f"runner {stage.name}"), file=sys.stderr)
        return 2
    finally:
        sys.argv = saved_argv
    if failures:
        [failure] = failures
        if full_error:
            raise failure
        if isinstance(failure, StageFailed):
            print(failure.explain(), file=sys.stderr)
            return 1
        print(format_config_error(failure, f"runner {stage.name}"), file=sys.stderr)
        return 2
    return 0
