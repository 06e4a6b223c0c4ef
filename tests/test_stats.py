"""Wilson intervals and Fisher's exact test against published values (R's binom/fisher.test, Wikipedia)."""

import pytest

from runner.stats import fisher_exact, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),  # Wilson (1927) score interval, the textbook 8/10 example
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 4, (0.0456, 0.6994)),
        (50, 100, (0.4038, 0.5962)),
    ],
)
def test_wilson_interval_matches_known_values(successes, n, expected):
    lo, hi = wilson_interval(successes, n)
    assert (round(lo, 4), round(hi, 4)) == expected


def test_wilson_interval_of_nothing_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


@pytest.mark.parametrize(
    ("table", "alternative", "expected"),
    [
        ((8, 10, 1, 10), "two-sided", 0.005477),  # R: fisher.test(matrix(c(8, 1, 2, 9), 2))
        ((8, 10, 1, 10), "greater", 0.002739),
        ((1, 10, 11, 14), "two-sided", 0.002759),  # Wikipedia's Fisher exact test example (1/10 vs 11/14)
        ((1, 10, 11, 14), "less", 0.001380),
        ((3, 7, 5, 9), "two-sided", 1.0),
        ((5, 5, 0, 5), "greater", 0.003968),  # 1 / C(10, 5)
    ],
)
def test_fisher_exact_matches_known_values(table, alternative, expected):
    assert fisher_exact(*table, alternative=alternative) == pytest.approx(expected, abs=5e-6)


def test_fisher_exact_one_sided_directions_are_consistent():
    greater = fisher_exact(7, 10, 3, 10, "greater")
    less = fisher_exact(3, 10, 7, 10, "less")
    assert greater == pytest.approx(less)
    assert fisher_exact(3, 10, 7, 10, "greater") > 0.9
    with pytest.raises(ValueError):
        fisher_exact(1, 2, 1, 2, "bigger")
