"""Success rates with their uncertainty: the Wilson score interval and Fisher's exact test.

Evaluations are small (tens of episodes), where the normal-approximation interval misbehaves near 0 and 1;
the Wilson interval and an exact test stay honest there. Pure Python, so ``runner compare`` stays fast.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95 % by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must lie in 0..n ({n})")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int, alternative: str = "greater") -> float:
    """Fisher's exact test on two proportions; the p-value that A's rate is greater than B's.

    ``alternative="two-sided"`` sums every table no more likely than the observed one (as scipy does).
    """
    total_successes, total = successes_a + successes_b, n_a + n_b
    low, high = max(0, total_successes - n_b), min(n_a, total_successes)

    def pmf(k: int) -> float:
        return math.comb(n_a, k) * math.comb(n_b, total_successes - k) / math.comb(total, total_successes)

    if alternative == "greater":
        return min(1.0, sum(pmf(k) for k in range(successes_a, high + 1)))
    if alternative == "less":
        return min(1.0, sum(pmf(k) for k in range(low, successes_a + 1)))
    if alternative == "two-sided":
        observed = pmf(successes_a)
        # The relative tolerance scipy uses, so that tables as likely as the observed one count.
        return min(1.0, sum(p for k in range(low, high + 1) if (p := pmf(k)) <= observed * (1 + 1e-7)))
    raise ValueError(f"alternative must be greater, less or two-sided, not {alternative!r}")
