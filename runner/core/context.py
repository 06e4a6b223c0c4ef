"""What a stage entry gets besides its config (``StageContext``): the calls that start, resume and end its run.

A stage is a name, a one-line summary, the config sections it reads and an entry function
``entry(cfg, ctx)``. The entry validates what it needs and only then calls ``ctx.start_run()``, which
creates the run directory (exclusive mkdir), writes ``.hydra/`` and ``run.json`` with secrets redacted,
and sends logging to ``run.log``. Anything that fails before ``start_run`` leaves no trace on disk;
anything after it ends the run as ``failed`` or ``interrupted``, never as a half-written record.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from runner.core import layout, outputs, provenance
from runner.core.errors import ConfigError
from runner.core.redact import Redactor
from runner.core.resume import resumed_config
from runner.core.run import Run, attach_run_log, end_run, write_git_diff
from runner.core.stage import Stage
from runner.core.sweeps import end_sweep, launcher_identity, sweep_record

log = logging.getLogger("runner")


class ValidationPassed(Exception):
    """Raised by ``StageContext.start_run`` in a dry run: the stage checked everything it checks first."""


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
    # The other runs of a session this job made, and its sweep.json: closed with this run (``finish``).
    _session: list[StageContext] = field(default_factory=list, repr=False)
    _session_sweep: Path | None = field(default=None, repr=False)

    def find_run(self, key: str, ref: str, stage: str | tuple[str, ...]) -> outputs.RunInfo:
        """The run a config key refers to (id, prefix, latest); a miss is a config error naming that key."""
        try:
            return outputs.resolve_run(self.outputs_root, ref, stage=stage)
        except outputs.RunReferenceError as error:
            kind = stage if isinstance(stage, str) else " or ".join(stage)
            raise ConfigError(key, str(error).rstrip("."), f"give the id of a {kind} run (see `runner runs`)") from None

    def resumed(self, cfg: DictConfig, resumable: tuple[str, ...]) -> tuple[outputs.RunInfo | None, DictConfig]:
        """``resume=<run>``: the earlier run of this stage it names, and the config to continue with (its saved
        one, changed only where ``resumable`` allows). ``(None, cfg)`` when this is a new run."""
        if cfg.resume is None:
            return None, cfg
        previous = self.find_run("resume", cfg.resume, self.stage.name)
        return previous, resumed_config(previous, cfg, self.overrides, resumable)

    def start_run(self, parents: Sequence[str] = ()) -> Run:
        """Create the run directory and record; call once, after validation, before touching anything."""
        if self.dry_run:
            raise ValidationPassed
        if self.run is not None:
            raise RuntimeError("start_run() called twice")
        parent_dir = Path(self.sweep["dir"]) if self.sweep is not None else self.outputs_root / self.experiment
        run_id, run_dir = outputs.create_unique_dir(parent_dir, self.stage.name)

        redactor = self.redactor
        cfg_data = OmegaConf.to_container(self.cfg, resolve=True)
        self._write_hydra_dir(run_dir, cfg_data, redactor)
        git = write_git_diff(run_dir, redactor)
        record = provenance.run_record(
            run_id, self.stage.name, self.experiment, [redactor.override(a) for a in self.argv],
            [redactor.override(o) for o in self.overrides], list(parents), git, outputs.now_iso(),
        )  # fmt: skip
        record["sweep"] = None if self.sweep is None else {"id": self.sweep["id"], "job": self.sweep["job"]}
        record["launcher"] = launcher_identity()
        record["host"]["profile"] = OmegaConf.select(self.cfg, "host.name")  # whose ports and cameras it used
        record["artifacts"] = [layout.CONFIG_YAML, layout.RUN_LOG]
        self.run = Run(run_id, run_dir, record, redactor)
        self.run.save()
        self._log_handler = attach_run_log(run_dir / layout.RUN_LOG, redactor)
        _set_hydra_output_dir(run_dir)
        log.info("%s run %s -> %s", self.stage.name, run_id, run_dir)
        return self.run

    def start_session_runs(
        self, jobs: Sequence[tuple[DictConfig, list[str]]], parents: Sequence[str] = (), **sweep_fields: Any
    ) -> list[StageContext]:
        """Several runs of this stage made by this one process, as one sweep: its own exclusive directory and
        sweep.json, one run per (config, overrides) job. Used where the jobs cannot run apart (a blinded
        real-robot session interleaves the episodes of several checkpoints on one arm).

        Returns one context per job; the first is this context. ``finish`` (which ``execute_job`` calls on
        every path) closes them all and the session's sweep.json.
        """
        if self.dry_run:
            raise ValidationPassed
        _, sweep_dir = outputs.create_unique_dir(self.outputs_root / self.experiment, f"{self.stage.name}-sweep")
        record = sweep_record(sweep_dir.name, self.stage.name, self.experiment, self.argv[2:], self.argv,
                               self.overrides, self.redactor)  # fmt: skip
        outputs.write_json_atomic(sweep_dir / layout.SWEEP_JSON, record | sweep_fields)
        contexts = []
        for job, (cfg, overrides) in enumerate(jobs):
            ctx = self if job == 0 else dataclasses.replace(self, run=None, _log_handler=None, _session=[])
            ctx.cfg, ctx.overrides = cfg, list(overrides)
            ctx.sweep = {"id": sweep_dir.name, "dir": str(sweep_dir), "job": job}
            ctx.start_run(parents)
            contexts.append(ctx)
        self._session = contexts[1:]
        self._session_sweep = sweep_dir / layout.SWEEP_JSON
        return contexts

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
            outputs.write_text_atomic(previous.path / layout.CONFIG_YAML, text)
        self._log_handler = attach_run_log(previous.path / layout.RUN_LOG, self.redactor)
        _set_hydra_output_dir(previous.path)
        log.info("%s run %s resumed (was %s) in %s", self.stage.name, previous.id, previous.status, previous.path)
        return self.run

    def _write_hydra_dir(self, run_dir: Path, cfg_data: Any, redactor: Redactor) -> None:
        from hydra.core.hydra_config import HydraConfig

        (run_dir / layout.HYDRA_DIR).mkdir()
        hydra_data = OmegaConf.to_container(HydraConfig.get(), resolve=False)
        files = {
            layout.CONFIG_YAML: redactor.data(cfg_data),
            layout.HYDRA_YAML: redactor.data({"hydra": hydra_data}),
            layout.OVERRIDES_YAML: [redactor.override(o) for o in self.overrides],
        }
        for name, data in files.items():
            (run_dir / name).write_text(OmegaConf.to_yaml(OmegaConf.create(data)))

    def finish(self, status: str, error: BaseException | None = None) -> None:
        """End this job's run, and the other runs of its session (``start_session_runs``) with it."""
        if self.run is not None:
            end_run(self.run, self.stage.name, status, error, self._log_handler)
        for other in self._session:
            other.finish(status, error)
        if self._session_sweep is not None:
            end_sweep(self._session_sweep)


def _set_hydra_output_dir(run_dir: Path) -> None:
    """Point ``${hydra:runtime.output_dir}`` at the run directory Hydra did not create."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    cfg = HydraConfig.get()
    with read_write(cfg.runtime), open_dict(cfg.runtime):
        cfg.runtime.output_dir = str(run_dir)
