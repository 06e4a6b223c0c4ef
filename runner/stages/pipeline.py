"""``runner pipeline``: record -> train -> eval sweep over the checkpoints -> compare, as one run.

Each stage runs as its own ``runner`` process and its own run (linked by ``parents``, and naming this
pipeline run in its run.json); the pipeline run lists its children as they finish. ``resume=<pipeline>``
skips the children that succeeded and continues the others where they stopped (``record resume=``,
``train resume=``, ``eval sweep.resume=``). ``pipeline.dataset_run=`` / ``pipeline.policy_run=`` use
existing runs instead of recording / training.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from runner.core import layout, outputs
from runner.core.context import Run, StageContext
from runner.core.logs import RUN_LOG_ONLY
from runner.core.provenance import PIPELINE_ENV
from runner.lerobot_adapter.checkpoints import last_step

log = logging.getLogger("runner.pipeline")

RESUMABLE_KEYS = ("pipeline.launcher",)
# Overrides that steer the pipeline itself, not the stages it starts.
OWN_KEYS = ("pipeline.", "resume", "dataset_run", "policy_run", "sweep.", "hydra")
STOP_GRACE_S = 60
STAGES = ("record", "train", "eval", "compare")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ChildFailed(RuntimeError):
    def __init__(self, stage: str, code: int, pipeline_id: str) -> None:
        super().__init__(
            f"`runner {stage}` exited with code {code} (its run.log says why). Fix it and continue with "
            f"`runner pipeline resume={pipeline_id}`: stages that succeeded are skipped"
        )


def _stop_with_parent() -> None:
    """In a child, before it runs: SIGTERM it when the pipeline dies, even by SIGKILL, so that no orphan stage
    goes on writing a run that the resumed pipeline would not know (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stage_overrides(overrides: list[str]) -> list[str]:
    return [o for o in overrides if not o.lstrip("+~").startswith(OWN_KEYS)]


class Children:
    """Starts the stages as runner processes and keeps the pipeline's run.json ``children`` current."""

    def __init__(self, run: Run, outputs_root: Path) -> None:
        self.run, self.root = run, outputs_root
        self.state: dict = dict(run.record.get("children") or {})

    def status(self, stage: str) -> str | None:
        entry = self.state.get(stage)
        if entry is None:
            return None
        if "sweep" in entry:
            return entry["status"]
        run = self._find(stage, entry["run"])
        return None if run is None else run.status

    def _find(self, stage: str, run_id: str) -> outputs.RunInfo | None:
        try:
            return outputs.resolve_run(self.root, run_id, stage=stage)
        except outputs.RunReferenceError:
            return None

    def refresh(self) -> None:
        """Note the children a killed pipeline started but could not note (it notes each as it ends)."""
        for stage in STAGES:
            if stage not in self.state or not self.state[stage].get("given"):
                self._record(stage)

    def start(self, stage: str, args: list[str]) -> None:
        command = [sys.executable, "-m", "runner", stage, *args]
        log.info("pipeline: runner %s %s", stage, " ".join(self.run.redactor.override(a) for a in args))
        env = {**os.environ, PIPELINE_ENV: self.run.id, "RUNNER_OUTPUTS": str(self.root)}
        process = subprocess.Popen(command, env=env, preexec_fn=_stop_with_parent)
        try:
            code = process.wait()
        except BaseException:  # Ctrl-C or SIGTERM: stop the child cleanly, so that it can be resumed
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
            raise
        finally:
            self._record(stage)
        if code != 0:
            raise ChildFailed(stage, code, self.run.id)

    def _record(self, stage: str) -> None:
        """Note the run (or sweep) this pipeline's ``stage`` child made, newest first."""
        if stage == "eval":
            sweeps = [s for s in outputs.list_sweeps(self.root) if s.record.get("pipeline") == self.run.id]
            if sweeps:
                runs = sweeps[0].runs()
                done = {json.dumps(sorted(r.record.get("overrides", []))) for r in runs if r.status == "succeeded"}
                jobs = {json.dumps(sorted(r.record.get("overrides", []))) for r in runs}
                complete = bool(runs) and done == jobs and sweeps[0].record.get("ended_at") is not None
                self.state["eval"] = {
                    "sweep": sweeps[0].id,
                    "runs": [r.id for r in runs],
                    "status": "succeeded" if complete else "incomplete",
                }
        else:
            runs = outputs.list_runs(self.root)
            mine = [r for r in runs if r.stage == stage and r.record.get("pipeline") == self.run.id]
            if mine:
                self.state[stage] = {"run": mine[0].id}
        self.run.update(children=self.state)

    def run_id(self, stage: str) -> str:
        return self.state[stage]["run"]


def pipeline(cfg: DictConfig, ctx: StageContext) -> None:
    previous, cfg = ctx.resumed(cfg, RESUMABLE_KEYS)
    given = {}
    if cfg.pipeline.policy_run is not None:
        given["train"] = ctx.find_run("pipeline.policy_run", cfg.pipeline.policy_run, "train").id
    elif cfg.pipeline.dataset_run is not None:
        given["record"] = ctx.find_run("pipeline.dataset_run", cfg.pipeline.dataset_run, "record").id
    overrides = _stage_overrides(previous.record["overrides"] if previous is not None else ctx.overrides)
    if not any(o.startswith("experiment=") for o in overrides) and ctx.experiment != "default":
        overrides.insert(0, f"experiment={ctx.experiment}")

    run = ctx.resume_run(previous, cfg) if previous is not None else ctx.start_run(parents=list(given.values()))
    children = Children(run, Path(cfg.paths.outputs))
    for stage, run_id in given.items():
        children.state[stage] = {"run": run_id, "given": True}
    if previous is not None:
        children.refresh()
    run.update(children=children.state)

    if "train" not in given:
        if "record" not in given:
            _record(children, overrides)
        _train(children, overrides)
    _eval(children, overrides, cfg.pipeline.launcher.value)
    _compare(children)
    _summary(children)


def _record(children: Children, overrides: list[str]) -> None:
    status = children.status("record")
    if status == "succeeded":
        log.info("pipeline: record run %s succeeded before: skipped", children.run_id("record"))
    elif status is not None:
        children.start("record", [f"resume={children.run_id('record')}"])
    else:
        children.start("record", overrides)


def _train(children: Children, overrides: list[str]) -> None:
    status = children.status("train")
    dataset = f"dataset_run={children.run_id('record')}"
    if status == "succeeded":
        log.info("pipeline: train run %s succeeded before: skipped", children.run_id("train"))
        return
    if status is not None:
        run = children._find("train", children.run_id("train"))
        if run is not None and last_step(run.path / layout.TRAIN_DIR) is not None:
            children.start("train", [f"resume={run.id}"])
            return
    children.start("train", [*overrides, dataset])


def _eval(children: Children, overrides: list[str], launcher: str) -> None:
    status = children.status("eval")
    launch = [f"hydra/launcher={launcher}"]
    if status == "succeeded":
        log.info("pipeline: eval sweep %s succeeded before: skipped", children.state["eval"]["sweep"])
    elif status is not None:
        children.start("eval", [f"sweep.resume={children.state['eval']['sweep']}", *launch])
    else:
        # The schedule's checkpoints, unless the command line picked some.
        picked = [o for o in overrides if o.startswith("eval.checkpoint=")]
        sweep = [] if picked else ["eval.checkpoint=all"]
        children.start("eval", ["-m", *overrides, f"policy_run={children.run_id('train')}", *sweep, *launch])
    if children.status("eval") != "succeeded":
        raise ChildFailed("eval", 1, children.run.id)


def _compare(children: Children) -> None:
    # A compare run exists only once the eval sweep succeeded, and it compared that very sweep.
    if children.status("compare") == "succeeded":
        log.info("pipeline: compare run %s succeeded before: skipped", children.run_id("compare"))
        return
    children.start("compare", [children.state["eval"]["sweep"]])


def _summary(children: Children) -> None:
    lines = ["pipeline runs:"]
    for stage in ("record", "train"):
        if stage in children.state:
            found = children._find(stage, children.run_id(stage))
            lines.append(f"  {stage:<8} {found.id if found else '?'}  {found.path if found else ''}")
    sweep = outputs.resolve_sweep(children.root, children.state["eval"]["sweep"])
    lines.append(f"  eval     {sweep.id}  {sweep.path}  ({len(children.state['eval']['runs'])} runs)")
    compare = children._find("compare", children.run_id("compare"))
    if compare is not None:
        lines.append(f"  compare  {compare.id}  {compare.path}")
    lines.append(f"  pipeline {children.run.id}  {children.run.dir}")
    print("\n".join(lines), flush=True)
    log.info("pipeline finished: %s", children.state, extra=RUN_LOG_ONLY)
