"""A utility command's run (compare, report, find-cameras) ends as a stage's does: succeeded, failed with its
error and traceback, or interrupted; never left `running` to be read as stale."""

from __future__ import annotations

import json

import pytest

from runner.core import outputs
from runner.core.run import utility_run


def _only_run(parent):
    [run] = outputs.list_runs(parent.parent)
    return run, json.loads((run.path / "run.json").read_text())


def test_a_utility_run_that_succeeds_records_its_artifacts(tmp_path):
    parent = tmp_path / "outputs" / "exp"
    with utility_run(parent, "compare", ["runner", "compare", "sweep-1"], ["parent-run"]) as run:
        (run.dir / "comparison.csv").write_text("a\n")
        run.add_artifact("comparison.csv")
    info, record = _only_run(parent)
    assert info.status == "succeeded" and record["ended_at"] and record["error"] is None
    assert record["parents"] == ["parent-run"] and record["argv"] == ["runner", "compare", "sweep-1"]
    assert record["artifacts"] == ["run.log", "comparison.csv"]


def test_a_utility_run_that_raises_ends_failed_with_its_error_in_run_json_and_the_traceback_in_run_log(tmp_path):
    parent = tmp_path / "outputs" / "exp"
    with pytest.raises(ValueError), utility_run(parent, "report", ["runner", "report", "dataset", "x"]):
        raise ValueError("the plot could not be drawn")
    info, record = _only_run(parent)
    assert info.status == "failed"
    assert record["error"] == {"type": "ValueError", "message": "the plot could not be drawn"}
    log = (info.path / "run.log").read_text()
    assert "report failed" in log and "Traceback" in log and "the plot could not be drawn" in log


def test_a_utility_run_stopped_by_ctrl_c_ends_interrupted(tmp_path):
    parent = tmp_path / "outputs" / "hardware"
    with pytest.raises(KeyboardInterrupt), utility_run(parent, "find-cameras", ["runner", "find-cameras"]):
        raise KeyboardInterrupt
    info, _ = _only_run(parent)
    assert info.status == "interrupted"
