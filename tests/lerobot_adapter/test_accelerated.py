"""The launching process's side of a multi-process training: following the main rank's events, and ranks that
never exit after their training ended (seen once in CI: rank 0 logged "End of training", the gloo group hung)."""

import json
import subprocess
import time

from runner.lerobot_adapter.accelerated import _follow, _stop
from runner.lerobot_adapter.hooked_training import Hooks


def _ranks(seconds: float) -> subprocess.Popen:
    """A real process group standing in for the launcher and its ranks."""
    return subprocess.Popen(["sleep", str(seconds)], start_new_session=True)


def _events(tmp_path, *steps: int):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"kind": "checkpoint", "step": s, "path": f"/c/{s}", "save_s": 0.1}) + "\n"
                              for s in steps))  # fmt: skip
    return events


def _hooks(saved: list):
    return Hooks(on_metrics=lambda *_: None, on_checkpoint=lambda step, path, seconds: saved.append(step))


def test_ranks_that_hang_after_the_last_checkpoint_are_let_go_once_training_ended(tmp_path):
    saved = []
    log = tmp_path / "rank0.log"
    log.write_text("... INFO rank0 root: End of training\n")
    ranks = _ranks(600)
    started = time.monotonic()
    try:
        exited = _follow(_events(tmp_path, 2, 4), ranks, _hooks(saved), 4, log, teardown_grace_s=1)
    finally:
        _stop(ranks)
    assert exited is False and saved == [2, 4] and time.monotonic() - started < 10
    assert ranks.poll() is not None, "the hung ranks are stopped"


def test_ranks_still_working_after_the_last_checkpoint_are_waited_for(tmp_path):
    """The last checkpoint saved but training not ended (the log does not say so): no grace period runs."""
    saved = []
    log = tmp_path / "rank0.log"
    log.write_text("... INFO rank0 root: Checkpoint policy after step 4\n")
    ranks = _ranks(3)
    assert _follow(_events(tmp_path, 4), ranks, _hooks(saved), 4, log, teardown_grace_s=0.5) is True
    assert saved == [4] and ranks.returncode == 0


def test_an_earlier_checkpoint_starts_no_grace_period(tmp_path):
    saved = []
    log = tmp_path / "rank0.log"
    log.write_text("End of training\n")  # never true at step 2 of 4; only the last checkpoint counts
    ranks = _ranks(3)
    assert _follow(_events(tmp_path, 2), ranks, _hooks(saved), 4, log, teardown_grace_s=0.5) is True
