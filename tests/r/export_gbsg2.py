"""Write ``tests/data/gbsg2.csv`` from scikit-survival's copy of the GBSG2 trial.

GBSG2 (German Breast Cancer Study Group 2; Schumacher et al., 1994) is a
randomised trial of hormonal therapy (``horTh``) in node-positive breast
cancer: 686 patients, recurrence-free survival in days. The CSV is the fixed
input of ``tests/r/reference_gbsg2.R`` (R reference values) and of
``tests/test_trial_reference.py``; regenerate both with::

    .venv/bin/python tests/r/export_gbsg2.py
    Rscript tests/r/reference_gbsg2.R

Columns: age, estrec, horTh, menostat, pnodes, progrec, tgrade, tsize, time,
cens (1 = event, 0 = censored). Categorical columns are written as their
labels so that R's ``read.csv(stringsAsFactors = TRUE)`` builds factors with
alphabetical levels, matching the one-hot coding of ``TrialData``.
"""

from pathlib import Path

import pandas as pd
from sksurv.datasets import load_gbsg2

OUT = Path(__file__).resolve().parents[1] / "data" / "gbsg2.csv"
COLUMNS = ["age", "estrec", "horTh", "menostat", "pnodes", "progrec", "tgrade", "tsize"]


def _require_integral(values: pd.Series, name: str) -> None:
    """GBSG2's numeric columns are whole numbers; write them without a decimal point."""
    if not (values == values.round()).all():
        raise ValueError(f"column '{name}' has non-integer values; cannot write it as int")


def main() -> None:
    """Load GBSG2 from scikit-survival and write it as a plain CSV."""
    X, y = load_gbsg2()
    frame = X[COLUMNS].copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(str)
        else:
            _require_integral(frame[name], name)
            frame[name] = frame[name].astype(int)
    _require_integral(pd.Series(y["time"]), "time")
    frame["time"] = y["time"].astype(int)
    frame["cens"] = y["cens"].astype(int)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False, lineterminator="\n")
    print(f"wrote {OUT} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
