"""Hydra's basic sweeper, plus two things runner needs before any job starts.

Every job's config is composed and checked (the stage's own checks included, see ``runner.core.jobs.validate_job``)
before the sweep directory is created: one bad combination fails the sweep up front, with nothing written.

With ``sweep.resume=``, only the jobs that did not succeed are launched again. Skipping happens here,
before the launcher, so that a SLURM or submitit resumption submits only the unfinished jobs (a queued job
that would merely exit still waits in the queue). Each job keeps its number in the sweep: the pending jobs
are launched in contiguous blocks with their original indices.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)


class _PendingJobsLauncher:
    """Wraps the configured launcher; launches only the jobs that have no succeeded run in the sweep yet."""

    def __init__(self, launcher: Launcher, sweep_dir: str) -> None:
        self._launcher = launcher
        self._sweep_dir = sweep_dir

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from runner.core.sweeps import job_key, succeeded_job_keys

        done = succeeded_job_keys(self._sweep_dir)
        results: list[JobReturn] = []
        block: list[Sequence[str]] = []
        block_start = initial_job_idx
        for index, overrides in enumerate(job_overrides, start=initial_job_idx):
            if job_key(index, overrides) in done:
                log.info("job %d already succeeded: not launched again", index)
                if block:
                    results += self._launcher.launch(block, initial_job_idx=block_start)
                    block = []
                continue
            if not block:
                block_start = index
            block.append(overrides)
        if block:
            results += self._launcher.launch(block, initial_job_idx=block_start)
        return results


class _ComposedOnce:
    """The sweep's config loader, handing the in-process launcher the job configs the sweeper already composed
    to check them (a composition is 0.1-0.3 s, a copy 5 ms); anything else goes to the loader itself."""

    def __init__(self, loader: Any, composed: dict[tuple[str, ...], DictConfig]) -> None:
        self._loader = loader
        self._composed = composed

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        config = self._composed.pop(tuple(sweep_overrides), None)
        return config if config is not None else self._loader.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class RunnerSweeper(BasicSweeper):
    """``hydra/sweeper=runner`` (runner's default): the basic sweeper, checking every job before the sweep
    starts and resuming a sweep job by job."""

    def sweep(self, arguments: list[str]) -> Any:
        from runner.core.sweeps import SWEEP_RESUME_ENV, begin_sweep

        launcher = self.launcher._launcher if isinstance(self.launcher, _PendingJobsLauncher) else self.launcher
        # Only the in-process launcher can take the checked configs; the others compose each job where it runs.
        composed: dict[tuple[str, ...], DictConfig] | None = {} if isinstance(launcher, BasicLauncher) else None
        self._every_job_checked = self._check_every_job(arguments, composed)
        if composed is not None:
            context = launcher.hydra_context
            launcher.hydra_context = dataclasses.replace(
                context, config_loader=_ComposedOnce(context.config_loader, composed)
            )
        if not os.environ.get(SWEEP_RESUME_ENV):
            begin_sweep(self.config)
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # Hydra composes each batch's jobs once more before launching them; _check_every_job composed and
        # checked every job already (a composition is 0.1-0.3 s: a third of a small sweep's time).
        if not self._every_job_checked:
            super().validate_batch_is_legal(batch)

    def _check_every_job(self, arguments: list[str], composed: dict[tuple[str, ...], DictConfig] | None) -> bool:
        """Compose and check every job of the sweep, keeping a copy of each job's config in ``composed`` (by its
        overrides) unless it is None; False where the task is not a runner stage's (unchecked)."""
        from runner.core.jobs import validate_job

        stage = getattr(self.task_function, "runner_stage", None)
        if stage is None:
            return False
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        hydra_config = HydraConfig.instance().cfg
        try:
            for number, job in enumerate(jobs):
                config = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
                if composed is not None:  # a copy: set_config below makes this one's hydra node read-only
                    composed[tuple(job)] = copy.deepcopy(config)
                with open_dict(config.hydra.job):
                    config.hydra.job.num = number
                HydraConfig.instance().set_config(config)
                task_config = copy.deepcopy(config)
                with read_write(task_config), open_dict(task_config):
                    del task_config["hydra"]
                validate_job(stage, task_config, self.task_function.runner_argv)
        finally:
            HydraConfig.instance().cfg = hydra_config
        return True

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.task_function = task_function
        from runner.core.sweeps import SWEEP_RESUME_ENV, watch_slurm_without_accounting

        if str(config.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher"):
            watch_slurm_without_accounting()

        if os.environ.get(SWEEP_RESUME_ENV):
            self.launcher = _PendingJobsLauncher(self.launcher, str(config.hydra.sweep.dir))  # type: ignore[assignment]
