"""Evaluation on a real arm: one blinded, operator-scored session over every checkpoint asked for.

The episodes of all checkpoints are interleaved in a random order that never names the checkpoint; the
operator sets up each episode's start and scores it with a key. Each checkpoint still gets its own run (a
session of several is one sweep), written as episodes finish, so an interrupted session keeps what was scored.
The runs are closed by the job's lifecycle (``StageContext.finish``), on every way out.
"""

from __future__ import annotations

import copy
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from runner.core import layout
from runner.core.context import StageContext
from runner.core.errors import ConfigError
from runner.episodes.scenarios import max_frames
from runner.episodes.table import EpisodesTable
from runner.stages.eval.policies import EvaluationPlan, PolicySource, plan_evaluation
from runner.stages.eval.remote import RemoteLink, link_summary, refuse_what_remote_cannot_do
from runner.stages.eval.results import LINK_COLUMNS, ROBOT_COLUMNS, aborted_row, begin, record_episode, summarize
from runner.stages.eval.scene import check_before_eval

log = logging.getLogger("runner.eval")


def _refuse_what_a_robot_cannot_do(cfg: DictConfig) -> None:
    if cfg.eval.save_rollouts:
        raise ConfigError(
            "eval.save_rollouts",
            "is true, but rollouts are saved only in simulation",
            "drop it; on a real robot, record demonstrations with `runner record` instead",
        )
    if cfg.sweep.resume is not None:
        raise ConfigError(
            "sweep.resume",
            "names a real-robot session, which cannot be resumed: its trial order mixes the checkpoints",
            "start a new session; the interrupted one keeps its scored episodes in each run's eval/episodes.csv",
        )
    if not sys.stdin.isatty():
        raise ConfigError(
            "robot",
            f"is {cfg.robot.type}: a real-robot evaluation needs an operator at this terminal to score each "
            "episode with keys, and stdin is not a terminal",
            "run `runner eval` in a terminal (not piped or in the background), or evaluate in simulation",
        )


def _start_runs(cfg: DictConfig, ctx: StageContext, sources: list[PolicySource], blinded: dict) -> list:
    """One run per checkpoint: this job's run alone, or a session's runs as one sweep."""
    parents = sorted({s.policy_run for s in sources if s.policy_run})
    if len(sources) == 1:
        return [ctx.start_run(parents)]
    jobs = []
    for source in sources:
        job_cfg = copy.deepcopy(cfg)
        job_cfg.eval.checkpoint = str(source.checkpoint_step)
        overrides = [o for o in ctx.overrides if not o.startswith("eval.checkpoint=")]
        jobs.append((job_cfg, [*overrides, f"eval.checkpoint={source.checkpoint_step}"]))
    return [c.run for c in ctx.start_session_runs(jobs, parents, blinded=blinded)]


@dataclass
class _Scores:
    """What one checkpoint has been scored so far in the session."""

    table: EpisodesTable
    out: Path  # its run's eval/ folder
    outcomes: list = field(default_factory=list)
    redos: int = 0
    links: list = field(default_factory=list)  # remote inference: each scored episode's link figures


def evaluate_on_robot(cfg: DictConfig, ctx: StageContext) -> dict | list[dict]:
    from runner.episodes.keys import KeyReader
    from runner.episodes.trials import Console, blinded_order, draw_order_seed
    from runner.hardware.checks import require_ready_arms
    from runner.lerobot_adapter import devices, evaluation
    from runner.lerobot_adapter.robot_rollout import RealTimeChunking, RobotSession, enable_rtc

    _refuse_what_a_robot_cannot_do(cfg)
    job = plan_evaluation(cfg, ctx)
    remote = cfg.eval.inference.value == "remote"
    if remote:
        refuse_what_remote_cannot_do(cfg, len(job.sources))
    rtc = None
    if cfg.eval.inference.value == "rtc":
        rtc = RealTimeChunking(cfg.eval.rtc_execution_horizon, cfg.eval.rtc_max_guidance_weight,
                               cfg.eval.rtc_queue_threshold)  # fmt: skip
    robot_config = devices.robot_config(cfg)  # a port or camera missing from the host profile fails here
    calibration = require_ready_arms(cfg, with_teleop=False)  # the arm answers, is calibrated; nothing moved
    scene = check_before_eval(cfg, job.sources[0])  # the checkpoints of a session share their recording
    keys = KeyReader.for_stdin()
    order_seed = cfg.eval.order_seed if cfg.eval.order_seed is not None else draw_order_seed()
    order = blinded_order(len(job.sources), len(job.episodes), order_seed)
    blinded = {"order_seed": order_seed, "policies": len(job.sources), "trials": len(order)}
    session = link = None
    try:
        session = RobotSession(robot_config, job.device)  # not connected yet: nothing moves
        if remote:
            sizes = {role: (camera.width, camera.height) for role, camera in cfg.cameras.items()}
            link = RemoteLink(cfg, job.sources[0], sizes, session.joints)
            loaded = [link.connect()]  # before the run: a server that is not there is a config error
        else:
            loaded = [evaluation.load_policy(source.folder, job.device) for source in job.sources]
        for policy, source in zip(loaded, job.sources, strict=True):
            if rtc is not None and not enable_rtc(policy, rtc):
                raise ConfigError(
                    "eval.inference",
                    f"is rtc, and {source.folder} is a {evaluation.policy_type_and_inputs(source.folder)[0]} "
                    "policy: LeRobot's real-time chunking guides a flow-matching policy's chunks (smolvla, pi0, pi05)",
                    "use eval.inference=local for this policy",
                )
        runs = _start_runs(cfg, ctx, job.sources, blinded)
        scores = []
        columns = list(dict.fromkeys([*ROBOT_COLUMNS, *LINK_COLUMNS])) if remote else ROBOT_COLUMNS
        for run, source in zip(runs, job.sources, strict=True):
            run.update(session=blinded | {"sweep": ctx.sweep["id"] if len(runs) > 1 else None},
                       calibration=calibration)  # fmt: skip
            run.update(inference={"mode": cfg.eval.inference.value} | ({"server": cfg.eval.server} if remote else {}))
            out = begin(run, source, job.warnings)
            scene.save(run)
            scores.append(_Scores(EpisodesTable(out / layout.EPISODES_CSV, columns), out))
        console = Console(keys, len(order))
        session.connect()
        _run_trials(cfg, job, order, loaded, scores, session, console, link, rtc)
        extra = {"fps": cfg.episode.fps, "max_steps": max_frames(cfg.episode), "device": job.device,
                 "robot": cfg.robot.type, "scored_by": "operator", "order_seed": order_seed,
                 "scene_check": scene.record(), "inference": cfg.eval.inference.value}  # fmt: skip
        results = [
            summarize(run, source, score.outcomes, job.episodes, extra | {"redos": score.redos}
                      | link_summary(score.links, link.aborted if link else []))
            for run, source, score in zip(runs, job.sources, scores, strict=True)
        ]  # fmt: skip
        _unblind(console, job.sources, results, ctx.sweep["id"] if len(runs) > 1 else None)
        return results[0] if len(results) == 1 else results
    finally:
        keys.close()
        if link is not None:
            link.close()
        if session is not None:
            session.disconnect()  # torque released on every way out (LeRobot's disable_torque_on_disconnect)


def _run_trials(
    cfg: DictConfig, job: EvaluationPlan, order, loaded, scores: list[_Scores], session, console, link, rtc
) -> None:
    """Every trial of the blinded order: the operator sets it up, the policy runs, the operator scores it."""
    from runner.episodes.keys import Key
    from runner.episodes.trials import OperatorStop
    from runner.lerobot_adapter import evaluation
    from runner.lerobot_adapter.remote_policy import RemoteLost

    fps, max_steps = cfg.episode.fps, max_frames(cfg.episode)
    console.say(
        f"Blinded evaluation: {len(order)} trials ({len(job.sources)} policies x {len(job.episodes)} episodes), "
        f"{cfg.episode.episode_time_s:g} s each at most. During an episode: s success · f failure · r redo · q stop."
    )
    for trial in order:
        planned, score = job.episodes[trial.episode], scores[trial.policy]
        trial_redos = 0
        while True:
            console.announce(trial, planned, len(job.episodes))
            if console.wait_for({Key.SKIP, Key.STOP}) is Key.STOP:
                raise OperatorStop(f"stopped by the operator before trial {trial.number} of {len(order)}")
            console.say("  running...")
            keep = len(score.outcomes) < cfg.eval.videos and bool(cfg.cameras)
            try:
                episode = session.run_episode(
                    loaded[trial.policy],
                    planned.instruction,
                    fps,
                    max_steps,
                    console.episode_key,
                    keep_frames=keep,
                    rtc=rtc,
                )
            except RemoteLost as error:
                if link is None:
                    raise
                _link_lost(cfg, session, link, console, error, trial, planned, score)
                loaded[trial.policy] = link.loaded
                continue
            verdict = console.score()
            session.return_to_start()
            if verdict is Key.STOP:
                raise OperatorStop(f"stopped by the operator during trial {trial.number} of {len(order)}")
            if verdict is not Key.RERECORD:
                break
            score.redos += 1
            trial_redos += 1
            log.info("trial %d/%d: redo (the operator's call)", trial.number, len(order))
        success = verdict is Key.SUCCESS
        outcome = evaluation.EpisodeOutcome(
            seed=planned.seed, success=success, steps=episode.steps, sum_reward=float(success),
            wall_s=episode.wall_s, frames=episode.frames,
        )  # fmt: skip
        figures = {"underruns": episode.underruns, "control_hz": round(episode.steps / episode.wall_s, 2)
                   if episode.wall_s > 0 else None}  # fmt: skip
        if link is not None:  # the link's figures: its underruns are the steps that waited for a chunk
            figures = {"status": "scored", **loaded[trial.policy].policy.stats.summary()}
        score.links.append(figures)
        record_episode(score.table, score.out, trial.episode, planned, outcome, fps, trial=trial.number,
                       ended_by="key" if episode.stopped else "time", redos=trial_redos,
                       clamped_steps=episode.clamped, **figures)  # fmt: skip
        outcome.frames = []  # written: no need to hold the images for the rest of the session
        score.outcomes.append(outcome)
        log.info("trial %d/%d · episode %d · %s · %s after %d steps (%d clamped by max_relative_target)",
                 trial.number, len(order), trial.episode + 1, planned.scenario, "success" if success else "failure",
                 episode.steps, episode.clamped)  # fmt: skip


def _link_lost(cfg: DictConfig, session, link: RemoteLink, console, error, trial, planned, score: _Scores) -> None:
    """The trial's link was lost: the arm holds (or is released), the trial is recorded aborted, and once the
    server answers again the arm goes back to its start for the trial to run again (LinkGone if it does not)."""
    release = cfg.eval.on_link_lost.value == "release"
    if release:
        session.set_torque(False)
    console.say(
        f"  the policy server at {link.address} is lost ({error}): this trial is aborted, not scored; the arm "
        f"{'is released (torque off)' if release else 'holds its position'}. "
        f"Waiting up to {cfg.eval.reconnect_s:g} s for the server (eval.reconnect_s)..."
    )
    link.lost(trial.episode, error, lambda row: score.table.append(aborted_row(planned, row, trial=trial.number)))
    console.say("  reconnected: the arm returns to its start, and the trial runs again.")
    if release:
        session.set_torque(True)
    session.return_to_start()


def _unblind(console, sources: list[PolicySource], results: list[dict], sweep: str | None) -> None:
    console.say("\nUnblinded results:")
    for source, metrics in zip(sources, results, strict=True):
        name = f"checkpoint {source.checkpoint_step}" if source.checkpoint_step is not None else str(source.folder)
        lo, hi = metrics["ci95"]
        console.say(f"  {name}: {metrics['successes']}/{metrics['n_episodes']} = "
                    f"{100 * metrics['success_rate']:.0f} % (95 % CI {100 * lo:.0f}-{100 * hi:.0f} %)")  # fmt: skip
    if sweep is not None:
        console.say(f"Compare them: runner compare {sweep}")
