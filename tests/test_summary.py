"""The words a run is described with: ordinals and the no-learner headline."""

from __future__ import annotations

import pytest

from kit import ROOT
from stratify.config import load_config
from stratify.pipeline.experiment import analyse, load_trial
from stratify.report.run import RunResult
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
    run = RunResult(config, data, analysis)
    # the flagship trial's numbers, as the terminal prints them
    expected = (
        "Unadjusted HR 0.82 (0.54–1.24), log-rank p = 0.34; arm × csf_pnfh interaction p = 0.00023."
    )
    assert headline(run) == expected
    m = analysis.metrics()
    assert m["hr_unadjusted"] == pytest.approx(0.82, abs=0.005)
    assert m["logrank_p"] == pytest.approx(0.34, abs=0.005)
    assert m["interaction_p"] == pytest.approx(0.00023, abs=5e-6)
    text = describe(run)
    assert text.startswith(expected + "\n\n220 patients, 90 events.")
