"""The words a run is described with: ordinals and the no-learner headline."""

from __future__ import annotations

import pytest

from kit import ROOT
from stratify.config import load_config
from stratify.pipeline.experiment import analyse, load_trial
from stratify.report.summary import describe, headline, ordinal


@pytest.mark.parametrize(
    ("k", "text"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"),
     (21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th"), (2.0, "2nd")],
)  # fmt: skip
def test_ordinal(k, text):
    assert ordinal(k) == text


def test_without_learners_the_headline_is_the_trial_analysis(tmp_path):
    config = load_config(
        ROOT / "configs" / "mirocals.yaml", [f"tracking.uri={tmp_path}", "learners=[]"]
    )
    data = load_trial(config)
    analysis, _ = analyse(config, data)
    m = analysis.metrics()
    expected = (
        f"Unadjusted HR {m['hr_unadjusted']:.2f} ({m['hr_unadjusted_ci_low']:.2f}–"
        f"{m['hr_unadjusted_ci_high']:.2f}), log-rank p = {m['logrank_p']:.2g}; "
        f"arm × csf_pnfh interaction p = {m['interaction_p']:.2g}."
    )
    assert headline(analysis, data) == expected
    # the flagship trial's figures, as the terminal prints them
    assert expected.startswith("Unadjusted HR 0.82 (0.54–1.24), log-rank p = 0.34; ")
    assert expected.endswith("interaction p = 0.00023.")
    text = describe(analysis, data)
    assert text.startswith(expected + "\n\n220 patients, 90 events.")
