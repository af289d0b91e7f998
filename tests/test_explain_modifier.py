"""The modifier analysis: crossover, its interval, and when no crossover is claimed."""

import re

import numpy as np
import pytest
from joblib import parallel_config

from stratify.exceptions import StratifyInputError
from stratify.explain import modifier_effect
from stratify.report.summary import modifier_statement


def trial(benefit_at, n=400, noise=1.0, seed=0):
    """Modifier uniform on 0-10, scores = true benefit + independent noise, any outcome."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 10, n)
    scores = benefit_at(m) + rng.normal(0, noise, n)
    time, event, arm = rng.exponential(5, n), rng.random(n) < 0.7, rng.integers(0, 2, n)
    return m, scores, time, event, arm


def test_a_clear_crossover_is_found_bounded_and_split_into_two_hazard_ratios():
    m, g, t, e, a = trial(lambda m: 5.0 - m)
    effect = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=100, random_state=1)
    assert effect.supported and effect.direction == "ends"
    # Truth 5; LOWESS of a straight line is unbiased, noise SD 1 over 400 patients.
    assert effect.crossover == pytest.approx(5.0, abs=0.3)
    assert effect.ci_low < 5.0 < effect.ci_high and effect.ci_high - effect.ci_low < 1.5
    # the sides split at the crossover as reported, to 4 significant digits
    below, above = (s.label for s in effect.sides)
    assert below[:2] == "< " and above[:2] == "≥ " and below[2:] == above[2:]
    assert float(below[2:]) == pytest.approx(effect.crossover, abs=0.0005)
    assert sum(s.n for s in effect.sides) == 400
    said = re.match(r"Estimated benefit ends at m (\S+) \[95% CI ", modifier_statement(effect))
    assert said and said[1] == below[2:]
    assert effect.metrics()["modifier_crossover"] == effect.crossover
    assert effect.dependence_p < 1e-10 and effect.trend_slope == pytest.approx(-1, abs=0.1)


def test_benefit_that_starts_above_a_value():
    m, g, t, e, a = trial(lambda m: m - 7.0, seed=2)
    effect = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=50, random_state=0)
    assert effect.direction == "starts" and effect.crossover == pytest.approx(7.0, abs=0.3)
    assert "begins at m 7" in modifier_statement(effect)


def test_no_dependence_means_no_claim():
    m, g, t, e, a = trial(lambda m: np.zeros_like(m), noise=3.0, seed=3)
    effect = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=50, random_state=0)
    assert not effect.supported
    assert modifier_statement(effect).startswith("The data do not support a crossover")
    assert np.isnan(effect.metrics()["modifier_crossover"])


def test_benefit_that_never_changes_sign():
    m, g, t, e, a = trial(lambda m: 20.0 - m, seed=4)
    effect = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=50, random_state=0)
    assert np.isnan(effect.crossover) and not effect.supported
    assert "stays positive" in modifier_statement(effect)


def test_an_interval_beyond_the_data_is_not_a_supported_crossover():
    # A gentle slope in heavy noise: the curve crosses, but many replicates do not.
    m, g, t, e, a = trial(lambda m: 0.3 * (8.0 - m), noise=8.0, seed=5)
    effect = modifier_effect(
        m, g, t, e, a, name="m", n_bootstrap=100, random_state=0, dependence=(0.001, "given")
    )
    assert np.isfinite(effect.crossover)
    assert not np.isfinite(effect.ci_high) or not np.isfinite(effect.ci_low)
    assert not effect.supported
    assert "reaches beyond the observed range" in modifier_statement(effect)


def test_a_prespecified_test_gates_the_claim():
    m, g, t, e, a = trial(lambda m: 5.0 - m)
    effect = modifier_effect(
        m, g, t, e, a, name="m", n_bootstrap=50, random_state=0, dependence=(0.4, "Cox Wald")
    )
    assert not effect.supported and "Cox Wald, p = 0.4" in modifier_statement(effect)


def test_same_seed_same_interval():
    m, g, t, e, a = trial(lambda m: 5.0 - m, noise=3.0)
    one = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=50, random_state=7)
    two = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=50, random_state=7)
    assert (one.ci_low, one.ci_high) == (two.ci_low, two.ci_high)
    np.testing.assert_array_equal(one.band_low, two.band_low)


def test_the_bootstrap_gives_the_same_interval_on_any_number_of_workers():
    # the resamples are drawn before they are split over workers (joblib.parallel_config)
    m, g, t, e, a = trial(lambda m: 5.0 - m, noise=3.0)
    one = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=41, random_state=7)
    with parallel_config(backend="threading", n_jobs=3):
        three = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=41, random_state=7)
    assert (one.crossover, one.ci_low, one.ci_high) == (
        three.crossover,
        three.ci_low,
        three.ci_high,
    )
    assert one.crossing_share == three.crossing_share
    np.testing.assert_array_equal(one.band_low, three.band_low)
    np.testing.assert_array_equal(one.band_high, three.band_high)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"benefit": np.r_[np.nan, np.ones(99)]}, "must be finite"),
        ({"benefit": np.ones(50)}, "same length"),
        ({"n_bootstrap": 5}, "n_bootstrap must be an integer >= 20"),
        ({"frac": 0}, r"frac must be in \(0, 1\]"),
        ({"modifier": np.ones(100)}, "barely varies"),
    ],
)
def test_bad_input(change, message):
    rng = np.random.default_rng(0)
    args = {"modifier": rng.uniform(0, 1, 100), "benefit": rng.normal(size=100)}
    kwargs = {"n_bootstrap": 20} | {k: v for k, v in change.items() if k not in args}
    args |= {k: v for k, v in change.items() if k in args}
    t, e, a = np.ones(100), np.ones(100, bool), np.arange(100) % 2
    with pytest.raises(StratifyInputError, match=message):
        modifier_effect(args["modifier"], args["benefit"], t, e, a, name="m", **kwargs)


@pytest.mark.slow
def test_crossover_interval_covers_the_truth():
    # 200 trials with a true crossover at 5: the 95% percentile interval should cover
    # it in about 95% of them; allow 3 Monte Carlo SEs below (0.95 - 3*0.015 = 0.90).
    covered = 0
    for seed in range(200):
        m, g, t, e, a = trial(lambda m: 5.0 - m, n=220, noise=4.0, seed=100 + seed)
        effect = modifier_effect(m, g, t, e, a, name="m", n_bootstrap=100, random_state=seed)
        covered += bool(effect.ci_low <= 5.0 <= effect.ci_high)
    assert covered / 200 >= 0.90
