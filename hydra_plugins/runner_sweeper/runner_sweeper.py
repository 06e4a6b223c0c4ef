"""Hydra's basic sweeper, plus ``sweep.resume=``: only the jobs that did not succeed are launched again.

Skipping happens here, before the launcher, so that a SLURM or submitit resumption submits only the
unfinished jobs (a queued job that would merely exit still waits in the queue). Each job keeps its number
in the sweep: the pending jobs are launched in contiguous blocks with their original indices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class _PendingJobsLauncher:
    """Wraps the configured launcher; launches only the jobs that have no succeeded run in the sweep yet."""

    def __init__(self, launcher: Launcher, sweep_dir: str) -> None:
        self._launcher = launcher
        self._sweep_dir = sweep_dir

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from runner.sweeps import job_key, succeeded_job_keys

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


class RunnerSweeper(BasicSweeper):
    """``hydra/sweeper=runner`` (runner's default): the basic sweeper, resuming a sweep job by job."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        from runner.sweeps import SWEEP_RESUME_ENV

        if os.environ.get(SWEEP_RESUME_ENV):
            self.launcher = _PendingJobsLauncher(self.launcher, str(config.hydra.sweep.dir))  # type: ignore[assignment]
