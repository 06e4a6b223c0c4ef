"""The machinery every Hydra-composed stage shares.

A stage is a name, a one-line summary, the config sections it reads and an entry function
``entry(cfg, ctx)``. The entry validates what it needs and only then calls ``ctx.start_run()``, which
creates the run directory (exclusive mkdir), writes ``.hydra/`` and ``run.json`` with secrets redacted,
and sends logging to ``run.log``. Anything that fails before ``start_run`` leaves no trace on disk;
anything after it ends the run as ``failed`` or ``interrupted``, never as a half-written record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from runner import disk, outputs
from runner.errors import ConfigError, StageFailed, format_config_error, is_config_error
from runner.redact import REDACTED, RedactingFormatter, Redactor, secret_values_in
from runner.stage import Stage
from runner.sweeps import SWEEP_DIR_ENV, SWEEP_ID_ENV, SWEEP_RESUME_ENV, launcher_identity

CONF_DIR = outputs.repo_root() / "conf"
STAGE_ENV = "RUNNER_STAGE"
# Set by `runner pipeline` for the stages it starts: their run.json names the pipeline run.
PIPELINE_ENV = "RUNNER_PIPELINE_RUN"  # read by provenance.run_record
DEFAULT_EXPERIMENT = "default"
log = logging.getLogger("runner")


class ValidationPassed(Exception):
    """Raised by ``StageContext.start_run`` in a dry run: the stage checked everything it checks first."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that every stage unwinds the same way as on Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


# --- resolvers ---------------------------------------------------------------------------------------


def _sweep_dir(outputs_root: str, experiment: str | None) -> str:
    if SWEEP_DIR_ENV in os.environ:
        return os.environ[SWEEP_DIR_ENV]
    sweep_id = os.environ.get(SWEEP_ID_ENV) or outputs.new_id("sweep")
    return str(Path(outputs_root) / (experiment or DEFAULT_EXPERIMENT) / sweep_id)


def register_resolvers() -> None:
    """Resolvers the conf tree uses; idempotent."""
    if not OmegaConf.has_resolver("runner_outputs"):
        OmegaConf.register_new_resolver("runner_outputs", lambda: str(outputs.default_outputs_root()))
    if not OmegaConf.has_resolver("runner_sweep_dir"):
        OmegaConf.register_new_resolver("runner_sweep_dir", _sweep_dir)


# On import, not only from the CLI: a submitit job process unpickles the task (importing this module) and
# composes its config before any runner code runs.
register_resolvers()


class _RunLogHandler(logging.FileHandler):
    """run.log. A line that cannot be written (a full disk) is reported once on the console, not as one
    traceback per log line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            print(f"runner: could not write {self.baseFilename} ({sys.exc_info()[1]}); "
                  "the log goes on on the console only", file=sys.stderr)  # fmt: skip


# --- the run handle ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory and its run.json, kept up to date as the stage goes."""

    id: str
    dir: Path
    record: dict[str, Any]
    redactor: Redactor

    def save(self) -> None:
        outputs.write_json_atomic(self.dir / outputs.RUN_FILE, self.redactor.data(self.record))

    def add_parents(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            if run_id not in self.record["parents"]:
                self.record["parents"].append(run_id)
        self.save()

    def add_artifact(self, path: Path | str) -> None:
        relative = str(Path(path).relative_to(self.dir) if Path(path).is_absolute() else path)
        if relative not in self.record["artifacts"]:
            self.record["artifacts"].append(relative)
        self.save()

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self.save()


@dataclass
class StageContext:
    """What a stage entry gets besides its config: where runs go, and the call that starts its run."""

    stage: Stage
    cfg: DictConfig
    experiment: str
    outputs_root: Path
    sweep: dict[str, Any] | None
    argv: list[str]
    overrides: list[str]
    # Knows the job's secrets: env tokens and values under secret-looking keys, found before scrubbing.
    redactor: Redactor = field(default_factory=Redactor)
    run: Run | None = None
    # Set while a sweep's jobs are checked before launch: starting a run then means validation passed.
    dry_run: bool = False
    _log_handler: logging.Handler | None = field(default=None, repr=False)

    def find_run(self, key: str, ref: str, stage: str) -> outputs.RunInfo:
        """The run a config key refers to (id, prefix, latest); a miss is a config error naming that key."""
        try:
            return outputs.resolve_run(self.outputs_root, ref, stage=stage)
        except outputs.RunReferenceError as error:
            raise ConfigError(
                key, str(error).rstrip("."), f"give the id of a {stage} run (see `runner runs`)"
            ) from None

    def start_run(self, parents: Sequence[str] = ()) -> Run:
        """Create the run directory and record; call once, after validation, before touching anything."""
        if self.dry_run:
            raise ValidationPassed
        if self.run is not None:
            raise RuntimeError("start_run() called twice")
        parent_dir = Path(self.sweep["dir"]) if self.sweep is not None else self.outputs_root / self.experiment
        run_id, run_dir = outputs.create_unique_dir(parent_dir, self.stage.name)

        from runner import provenance  # importlib.metadata and platform: only when a run starts

        redactor = self.redactor
        cfg_data = OmegaConf.to_container(self.cfg, resolve=True)
        self._write_hydra_dir(run_dir, cfg_data, redactor)
        git, diff = provenance.git_state(outputs.repo_root())
        if diff is not None:
            (run_dir / provenance.GIT_DIFF_FILE).write_text(redactor.text(diff))
        record = provenance.run_record(
            run_id, self.stage.name, self.experiment, [redactor.override(a) for a in self.argv],
            [redactor.override(o) for o in self.overrides], list(parents), git, outputs.now_iso(),
        )  # fmt: skip
        record["sweep"] = None if self.sweep is None else {"id": self.sweep["id"], "job": self.sweep["job"]}
        record["launcher"] = launcher_identity()
        record["artifacts"] = [".hydra/config.yaml", "run.log"]
        self.run = Run(run_id, run_dir, record, redactor)
        self.run.save()
        self._attach_log(run_dir / "run.log", redactor)
        _set_hydra_output_dir(run_dir)
        log.info("%s run %s -> %s", self.stage.name, run_id, run_dir)
        return self.run

    def start_session_runs(
        self, jobs: Sequence[tuple[DictConfig, list[str]]], parents: Sequence[str] = (), **sweep_fields: Any
    ) -> list[StageContext]:
        """Several runs of this stage made by this one process, as one sweep: its own exclusive directory and
        sweep.json, one run per (config, overrides) job. Used where the jobs cannot run apart (a blinded
        real-robot session interleaves the episodes of several checkpoints on one arm).

        Returns one context per job; the first is this context (finished by ``execute_job``), the others
        must be closed with ``finish_session`` on every path.
        """
        if self.dry_run:
            raise ValidationPassed
        _, sweep_dir = outputs.create_unique_dir(self.outputs_root / self.experiment, f"{self.stage.name}-sweep")
        record = _sweep_record(sweep_dir.name, self.stage.name, self.experiment, self.argv[2:], self.argv,
                               self.overrides, self.redactor)  # fmt: skip
        outputs.write_json_atomic(sweep_dir / outputs.SWEEP_FILE, record | sweep_fields)
        contexts = []
        for job, (cfg, overrides) in enumerate(jobs):
            ctx = self if job == 0 else dataclasses.replace(self, run=None, _log_handler=None)
            ctx.cfg, ctx.overrides = cfg, list(overrides)
            ctx.sweep = {"id": sweep_dir.name, "dir": str(sweep_dir), "job": job}
            ctx.start_run(parents)
            contexts.append(ctx)
        return contexts

    def finish_session(self, contexts: Sequence[StageContext], status: str, error: BaseException | None) -> None:
        """Close the other runs of a session (``start_session_runs``) and its sweep.json."""
        for ctx in contexts:
            if ctx is not self:
                ctx.finish(status, error)
        if self.sweep is not None:
            _end_sweep(Path(self.sweep["dir"]) / outputs.SWEEP_FILE)

    def resume_run(self, previous: outputs.RunInfo, cfg: DictConfig | None = None) -> Run:
        """Reopen an earlier run of this stage to continue it in its own directory.

        ``cfg`` is the config it continues with (``resumed_config``): saved as the run's config, so that the
        next resumption keeps a target this one raised. Each resumption's overrides are in run.json.
        """
        if self.dry_run:
            raise ValidationPassed
        if self.run is not None:
            raise RuntimeError("the run was already started")
        if previous.stage != self.stage.name:
            raise ConfigError("resume", f"names a {previous.stage} run, not a {self.stage.name} run", "give a run id")
        if previous.status == "running":
            raise ConfigError(
                "resume",
                f"names run {previous.id}, which is still running",
                "wait for it, or stop it first",
            )
        from runner import provenance

        record = dict(previous.record)
        record.setdefault("resumes", []).append(
            {
                "at": outputs.now_iso(),
                "from_status": previous.status,
                "argv": [self.redactor.override(a) for a in self.argv],
                "overrides": [self.redactor.override(o) for o in self.overrides],
                "process": provenance.process_identity(),
            }
        )
        record |= {"status": "running", "ended_at": None, "error": None, "process": provenance.process_identity()}
        self.run = Run(previous.id, previous.path, record, self.redactor)
        self.run.save()
        if cfg is not None:
            data = OmegaConf.to_container(cfg, resolve=True) | {"resume": None}
            text = OmegaConf.to_yaml(OmegaConf.create(self.redactor.data(data)))
            outputs.write_text_atomic(previous.path / ".hydra" / "config.yaml", text)
        self._attach_log(previous.path / "run.log", self.redactor)
        _set_hydra_output_dir(previous.path)
        log.info("%s run %s resumed (was %s) in %s", self.stage.name, previous.id, previous.status, previous.path)
        return self.run

    def _write_hydra_dir(self, run_dir: Path, cfg_data: Any, redactor: Redactor) -> None:
        from hydra.core.hydra_config import HydraConfig

        hydra_dir = run_dir / ".hydra"
        hydra_dir.mkdir()
        hydra_data = OmegaConf.to_container(HydraConfig.get(), resolve=False)
        files = {
            "config.yaml": redactor.data(cfg_data),
            "hydra.yaml": redactor.data({"hydra": hydra_data}),
            "overrides.yaml": [redactor.override(o) for o in self.overrides],
        }
        for name, data in files.items():
            (hydra_dir / name).write_text(OmegaConf.to_yaml(OmegaConf.create(data)))

    def _attach_log(self, path: Path, redactor: Redactor) -> None:
        handler = _RunLogHandler(path)
        handler.setFormatter(RedactingFormatter(redactor, "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        self._log_handler = handler

    def finish(self, status: str, error: BaseException | None = None) -> None:
        if self.run is None:
            return
        if error is not None:
            self.run.record["error"] = {"type": type(error).__name__, "message": str(error)}
            if status == "failed":
                # The traceback is for run.log; the console gets the one-paragraph explanation at exit.
                trace = "".join(traceback.format_exception(error))
                record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s failed:\n%s",
                                        (self.stage.name, trace), None)  # fmt: skip
                (self._log_handler or logging.getLogger()).handle(record)
            else:
                log.warning("%s interrupted: %s", self.stage.name, error or type(error).__name__)
        try:
            self.run.update(status=status, ended_at=outputs.now_iso())
        except OSError as unwritable:  # a full disk: the old run.json stays whole, and reads as stale
            log.error("could not write %s (%s): `runner runs` will show the run as stale",
                      self.run.dir / outputs.RUN_FILE, unwritable)  # fmt: skip
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()


def resumed_config(previous: outputs.RunInfo, cfg: DictConfig, overrides: list[str], resumable: tuple[str, ...]):
    """The config a resumed run continues with: its own saved one, plus only the overrides it may change.

    Anything else given on the command line is an error, not silently ignored: the data or checkpoints on
    disk were made with the saved values.
    """
    saved = OmegaConf.load(previous.path / ".hydra" / "config.yaml")
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key in ("resume", "experiment") or key.startswith("paths."):
            continue
        if not any(key == k or key.startswith(k + ".") for k in resumable):
            raise ConfigError(
                key,
                f"cannot change when resuming run {previous.id}: it was made with the saved value",
                f"drop it, or start a new run; keys a resumption may change: {', '.join(resumable)}",
            )
        OmegaConf.update(saved, key, OmegaConf.select(cfg, key), force_add=True)
    merged = OmegaConf.merge(cfg, saved)  # onto today's composition: the schema's types and any new keys
    _drop_unsaved_entries(merged, saved)
    merged.resume = cfg.resume
    return merged


def _drop_unsaved_entries(merged: DictConfig, saved: DictConfig) -> None:
    """Remove what an open map (cameras, host ports) gained from today's defaults in the merge: a run resumed
    with one camera must not come back with the default's two. Schema nodes keep their new keys."""
    with open_dict(merged):
        for key in list(merged.keys()):
            if key not in saved:
                if OmegaConf.get_type(merged) is dict:
                    del merged[key]
            elif isinstance(merged[key], DictConfig) and isinstance(saved[key], DictConfig):
                _drop_unsaved_entries(merged[key], saved[key])


def _set_hydra_output_dir(run_dir: Path) -> None:
    """Point ``${hydra:runtime.output_dir}`` at the run directory Hydra did not create."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    cfg = HydraConfig.get()
    with read_write(cfg.runtime), open_dict(cfg.runtime):
        cfg.runtime.output_dir = str(run_dir)


def _check_complete(cfg: DictConfig, sections: Iterable[str]) -> None:
    """Fail on a ``???`` left or an interpolation that does not resolve in the sections a stage reads, and
    on a value outside its schema bounds anywhere."""
    from runner.schema import check_bounds

    check_bounds(cfg)
    for section in sections:
        node = cfg.get(section)
        if not isinstance(node, DictConfig):
            continue
        missing = sorted(OmegaConf.missing_keys(node))  # full keys, e.g. task.instruction
        if missing:
            key = missing[0]
            raise ConfigError(
                key,
                f"has no value and this stage needs it (missing: {', '.join(missing)})",
                f"set it in the experiment YAML or on the command line, e.g. {key}=...",
            )
        OmegaConf.to_container(node, resolve=True)


def _check_host_choice(overrides: Iterable[str]) -> None:
    """``host`` is an optional group (no local.yaml is fine), so Hydra skips a profile that does not exist
    instead of failing: a misspelt ``host=NAME`` would silently run with no ports or cameras."""
    for override in overrides:
        if not override.startswith("host="):
            continue
        name = override.split("=", 1)[1]
        if name not in ("", "null") and not (CONF_DIR / "host" / f"{name}.yaml").exists():
            known = sorted(p.stem for p in (CONF_DIR / "host").glob("*.yaml"))
            raise ConfigError(
                f"host={name}",
                f"names no host profile (conf/host/{name}.yaml does not exist)",
                f"pick one of {', '.join(known)}, or create it from conf/host/example.yaml",
            )


def _check_added_keys(cfg: DictConfig, overrides: Iterable[str], groups: Iterable[str]) -> None:
    """Reject ``+key=value`` into a schema-typed node: Hydra allows it, but the schema is the single truth.

    Open maps (``cameras``, ``host.ports``, ...) still accept new keys.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(groups)
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if not (override.is_add() or override.is_force_add()) or key in groups:
            continue
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
        if schema is not None and dataclasses.is_dataclass(schema):
            fields = ", ".join(f.name for f in dataclasses.fields(schema) if f.name != leaf)
            raise ConfigError(
                key,
                f"is not a key of {schema.__name__} (`+` cannot add keys to a schema)",
                f"use one of its keys ({fields}), or change runner/schema.py if a new key is really needed",
            )


def _scrub_secrets(node: Any, redactor: Redactor, path: str = "") -> list[str]:
    """Replace, in place, every config value that holds a live secret; return the keys it touched.

    Stages write config values into datasets and checkpoints, so a token pasted into a value (or an
    ``${oc.env:HF_TOKEN}``) must be gone before any stage sees the config.
    """
    from omegaconf import ListConfig

    touched = []
    keys = range(len(node)) if isinstance(node, ListConfig) else list(node.keys())
    for key in keys:
        full = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            touched += _scrub_secrets(value, redactor, full)
        elif isinstance(value, str) and redactor.text(value) != value:
            node[key] = redactor.text(value)  # an existing key: no struct flag to lift
            touched.append(full)
    return touched


def _job_context(stage: Stage, cfg: DictConfig, argv: list[str]) -> StageContext:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    experiment = hydra_cfg.runtime.choices.get("experiment") or DEFAULT_EXPERIMENT
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

    _check_host_choice(ctx.overrides)
    _check_added_keys(cfg, ctx.overrides, HydraConfig.get().runtime.choices.keys())
    _check_complete(cfg, stage.uses)
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
        for key in _scrub_secrets(cfg, ctx.redactor):
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


class SweepCallback(Callback):
    """Hydra callback: each sweep gets its own directory, created exclusively, with a sweep.json."""

    def __init__(self) -> None:
        self._sweep_file: Path | None = None

    def on_multirun_start(self, config: DictConfig, **_: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._sweep_file = sweep_dir / outputs.SWEEP_FILE
        redactor = Redactor()
        if os.environ.get(SWEEP_RESUME_ENV):
            record = json.loads(self._sweep_file.read_text())
            record.setdefault("resumes", []).append(
                {"at": outputs.now_iso(), "argv": [redactor.override(a) for a in sys.argv]}
            )
            record["ended_at"] = None
            outputs.write_json_atomic(self._sweep_file, record)
        # A new sweep's directory is made by runner's sweeper, once every job has passed its checks.

    def on_job_start(self, config: DictConfig, **_: Any) -> None:
        """Hydra saved the sweep's composed config as multirun.yaml, secrets and all: rewrite it redacted."""
        if str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        saved = Path(config.hydra.sweep.dir) / "multirun.yaml"
        if not saved.exists():
            return
        data = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
        redactor = Redactor(secret_values_in(data))
        clean = OmegaConf.to_yaml(OmegaConf.create(redactor.data(data)))
        temporary = saved.with_name(f".multirun.yaml.{os.getpid()}")
        temporary.write_text(clean)
        os.replace(temporary, saved)

    def on_multirun_end(self, config: DictConfig, **_: Any) -> None:
        if self._sweep_file is not None:
            _end_sweep(self._sweep_file)


def begin_sweep(config: DictConfig) -> None:
    """Create a new sweep's directory (exclusively: a sweep id is never reused) and its sweep.json."""
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_dir.mkdir()
    os.environ[SWEEP_DIR_ENV] = str(sweep_dir)
    experiment = config.hydra.runtime.choices.get("experiment") or DEFAULT_EXPERIMENT
    record = _sweep_record(sweep_dir.name, os.environ.get(STAGE_ENV), experiment, sys.argv[1:], sys.argv,
                           OmegaConf.to_container(config.hydra.overrides.task, resolve=False),
                           Redactor())  # fmt: skip
    outputs.write_json_atomic(sweep_dir / outputs.SWEEP_FILE, record)


def _sweep_record(
    sweep_id: str,
    stage: str | None,
    experiment: str,
    args: Sequence[str],
    argv: Sequence[str],
    overrides: Sequence[str],
    redactor: Redactor,
) -> dict[str, Any]:
    """A new sweep.json: ``args`` are the stage's arguments, ``argv`` the whole command line; secrets redacted."""
    return {
        "id": sweep_id,
        "stage": stage,
        "experiment": experiment,
        "pipeline": os.environ.get(PIPELINE_ENV),
        # What `sweep.resume=` replays: the stage's arguments, sweeps already expanded.
        "args": [redactor.override(a) for a in args],
        "argv": [redactor.override(a) for a in argv],
        "overrides": [redactor.override(o) for o in overrides],
        "started_at": outputs.now_iso(),
        "ended_at": None,
    }


def _end_sweep(sweep_file: Path) -> None:
    record = json.loads(sweep_file.read_text())
    record["ended_at"] = outputs.now_iso()
    outputs.write_json_atomic(sweep_file, record)


# --- the command line --------------------------------------------------------------------------------


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
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    candidates = [a for a in args if "=" in a and not a.startswith(("-", "hydra.", "hydra/", "~hydra"))]
    try:
        parsed = OverridesParser.create().parse_overrides(candidates)
    except Exception:
        return None
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    plain = [a for a, o in zip(candidates, parsed, strict=True) if not o.is_sweep_override()]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=plain), swept
    except Exception:
        return None
    finally:
        GlobalHydra.instance().clear()


def _lost_job_message(stage: Stage, error: Exception) -> str:
    """A submitit job that ended without a result: its process was killed, ran out of memory or of time."""
    sweep = Path(os.environ.get(SWEEP_DIR_ENV, "?")).name
    cause = " ".join(str(error).strip().splitlines()[:2]) or type(error).__name__
    return (
        f"runner {stage.name}: a job of sweep {sweep} ended without a result ({cause}). Its log is in "
        f"the sweep's .submitit/ folder; the runs that finished are kept. `runner {stage.name} "
        f"sweep.resume={sweep}` launches only the jobs that did not succeed."
    )


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
        main()
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
