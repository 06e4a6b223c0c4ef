"""The power law of practice, fitted to an operator's time to complete the task against episodes of practice.

T(n) = a * (n + 1) ** -b + c: b is the learning rate (0 for an operator who does not get faster) and c the
time practice cannot remove. For each candidate c on a grid, a and b come from a straight line in log-log
space; the c with the least squared error in time wins. The rate's 95 % interval is a seeded bootstrap
over the episodes, so "improves" means the interval lies above zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    """T(n) = a * (n + 1) ** -b + c: the power law of practice, n episodes of practice before this one."""

    a: float
    b: float  # the learning rate: 0 for no improvement
    c: float  # the asymptote: the time practice cannot remove
    r2: float
    b_ci95: tuple[float, float]

    def predict(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a * (np.asarray(n, dtype=float) + 1) ** -self.b + self.c

    def plateau(self, share: float = 0.01, horizon: int = 10_000) -> int | None:
        """The first episode after which one more episode saves less than ``share`` of the time."""
        n = np.arange(horizon, dtype=float)
        times = self.predict(n)
        gain = (times[:-1] - times[1:]) / times[:-1]
        below = np.flatnonzero(gain < share)
        return int(below[0]) if len(below) else None


def _power_law(n: np.ndarray, t: np.ndarray, grid: int) -> tuple[float, float, float, float]:
    """Least squares over a grid of asymptotes c; for each c, a and b from a line in log-log space."""
    x = np.log(n + 1)
    best = (np.inf, 0.0, 0.0, 0.0)
    for c in np.linspace(0.0, float(t.min()) * 0.999, grid):
        slope, intercept = np.polyfit(x, np.log(t - c), 1)
        sse = float(((t - (np.exp(intercept) * (n + 1) ** slope + c)) ** 2).sum())
        if sse < best[0]:
            best = (sse, float(np.exp(intercept)), float(-slope), float(c))
    return best


def fit_power_law(practice: list[float], times: list[float], grid: int = 200, resamples: int = 200) -> PowerLawFit:
    """Fit the power law of practice to (episodes of practice, time to complete); the learning rate's 95 %
    interval comes from a seeded bootstrap over the episodes."""
    n, t = np.asarray(practice, dtype=float), np.asarray(times, dtype=float)
    if len(n) < 3:
        raise ValueError("a learning curve needs at least 3 timed episodes")
    sse, a, b, c = _power_law(n, t, grid)
    spread = float(((t - t.mean()) ** 2).sum())
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(resamples):
        pick = rng.integers(0, len(n), len(n))
        if len(np.unique(n[pick])) >= 3:
            rates.append(_power_law(n[pick], t[pick], grid // 4)[2])
    low, high = np.percentile(rates, [2.5, 97.5]) if rates else (b, b)
    return PowerLawFit(a, b, c, 1 - sse / spread if spread > 0 else 0.0, (float(low), float(high)))
