"""`runner report operators`: the power law of practice, fitted to simulated operators whose rate is known."""

import json

import pytest
from conftest import run_dirs, run_runner

from runner.commands.reports.learning_curve import fit_power_law


def test_the_fit_recovers_a_known_power_law_and_its_plateau():
    practice = list(range(12))
    times = [20 * (n + 1) ** -0.7 + 5 for n in practice]
    fit = fit_power_law(practice, times)
    assert fit.b == pytest.approx(0.7, abs=0.02) and fit.c == pytest.approx(5, abs=0.2) and fit.r2 > 0.999
    assert fit.b_ci95[0] > 0
    plateau = fit.plateau()
    gains = [(fit.predict(n) - fit.predict(n + 1)) / fit.predict(n) for n in (plateau - 1, plateau)]
    assert gains[0] >= 0.01 > gains[1]  # the first episode after which one more saves under 1 %


@pytest.mark.slow
def test_learning_curve_fit_recovers_the_sim_operator_s_rate_and_finds_none_in_a_steady_one(outputs_root):
    record = ["record", "experiment=sim_demo", "cameras=sim_side_small", "episode.num_episodes=8",
              "episode.early_stop.idle_s=null"]  # fmt: skip
    learner = run_runner(*record, "teleop.learning_rate=0.5", "teleop.speed=0.3", timeout=600)
    assert learner.returncode == 0, learner.stderr[-3000:]
    steady = run_runner(*record, "teleop.speed=0.6", timeout=600)
    assert steady.returncode == 0, steady.stderr[-3000:]
    learner_run, steady_run = sorted(d.name for d in run_dirs(outputs_root))
    fits = {}
    for run in (learner_run, steady_run):
        result = run_runner("report", "operators", run, "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        fits[run] = json.loads(result.stdout)["operators"]["scripted"]["fit"]
    # The operator's speed grows as (episode + 1) ** 0.5; the fitted rate lands within 0.2 of it.
    assert fits[learner_run]["rate"] == pytest.approx(0.5, abs=0.2) and fits[learner_run]["improves"]
    assert fits[learner_run]["r2"] > 0.9
    low, high = fits[steady_run]["rate_ci95"]
    assert not fits[steady_run]["improves"] and low <= 0 <= high
