"""The one p-value formatter and the one hazard-ratio formatter every text of a run uses."""

from __future__ import annotations

import pytest

from stratify.formatting import SMALLEST_P, hazard_ratio, p_is, p_value
from stratify.trial import HazardRatio

nan = float("nan")


@pytest.mark.parametrize(
    ("p", "options", "text"),
    [
        (0.3412, {}, "0.34"),
        (0.873, {"digits": 3}, "0.873"),
        (1.0, {}, "1"),
        (1.0, {"digits": 3, "alpha": 0.05, "smallest": SMALLEST_P}, "1"),
        (0.00023, {}, "0.00023"),  # the terminal keeps the digits of a small p
        (0.00023, {"smallest": SMALLEST_P}, "< 0.001"),  # tables and figures do not
        (0.0009999, {"smallest": SMALLEST_P}, "< 0.001"),
        (0.001, {"smallest": SMALLEST_P}, "0.001"),
        (0.0496, {}, "0.05"),
        (0.0496, {"alpha": 0.05}, "0.0496"),  # rounding would carry it across alpha
        (0.0504, {"alpha": 0.05}, "0.05"),  # "0.05" is not below 0.05: no digit needed
        (0.04, {"alpha": 0.05}, "0.04"),
        (nan, {}, "—"),
        (None, {}, "—"),
        (float("inf"), {}, "—"),
    ],
)
def test_p_value(p, options, text):
    assert p_value(p, **options) == text


def test_p_in_a_sentence():
    assert p_is(0.3412) == "p = 0.34"
    assert p_is(0.00023) == "p = 0.00023"
    assert p_is(0.00023, smallest=SMALLEST_P) == "p < 0.001"
    assert p_is(1.0, 3) == "p = 1"
    assert p_is(nan) == "p = —"


def test_hazard_ratios_keep_the_digits_that_matter():
    def hr(*values):
        return hazard_ratio(HazardRatio(*values), with_p=True)

    assert hr(1.00035, 1.00017, 1.00053, 0.00013) == "1.00035 (1.00017–1.00053), p = 0.00013"
    assert hr(0.971, 0.633, 1.49, 0.89) == "0.97 (0.63–1.49), p = 0.89"
    assert hr(1.02, 1.015, 1.03, 0.5) == "1.020 (1.015–1.030), p = 0.5"
    # no false precision: a wide CI around ~1 keeps 2 decimals
    assert hr(0.99994, 0.48193, 2.07474, 0.9) == "1.00 (0.48–2.07), p = 0.9"
    assert hazard_ratio(HazardRatio(0.29, 0.14, 0.63, 0.0016)) == "0.29 (0.14–0.63)"
    assert hr(0.29, 0.14, 0.63, 0.0002) == "0.29 (0.14–0.63), p = 0.0002"
    small = HazardRatio(0.29, 0.14, 0.63, 0.0002)
    assert hazard_ratio(small, with_p=True, smallest=SMALLEST_P) == "0.29 (0.14–0.63), p < 0.001"
    assert hr(nan, nan, nan, nan) == "not estimable"  # never with a p
    assert hr(0.5, 0.2, 1.1, nan) == "0.50 (0.20–1.10), p = —"
