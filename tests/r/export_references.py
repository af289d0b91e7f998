"""Write the inputs of ``tests/r/reference_extra.R``: three CSVs in ``tests/data``.

* ``mirocals_seed3.csv``: ``simulate_mirocals(220, seed=3)`` (a MIROCALS-like
  trial, see :mod:`stratify.data.simulate`) with ``log_delta_fs = log(delta_fs)``
  added, keeping only the columns the analysis uses: time, event, arm, age,
  bulbar_onset, log_delta_fs, svc, csf_pnfh. Floats are written with 17
  significant digits, so reading them back (pandas ``float_precision=
  "round_trip"``, R ``read.csv``) gives the simulated doubles.
* ``mirocals_seed10093.csv``: the same with seed 10093, whose adjusted Cox model
  made lifelines' Newton-Raphson diverge (R converges in 7 iterations);
* ``gbsg2_monthly.csv``: ``tests/data/gbsg2.csv`` with ``time`` replaced by
  ``ceiling(time / 30.4375)``, whole months: heavily tied event times, so that
  Efron and Breslow ties give clearly different Cox estimates.

The CSVs are fixed inputs: they are committed, and ``tests/test_trial_reference.py``
reads them rather than re-simulating. Regenerate the CSVs and the references with::

    /tmp/venv/bin/python tests/r/export_references.py
    Rscript tests/r/reference_extra.R
"""

from pathlib import Path

import numpy as np
import pandas as pd

from stratify.data.simulate import simulate_mirocals

DATA = Path(__file__).resolve().parents[1] / "data"
MIROCALS_COLUMNS = [
    "time", "event", "arm", "age", "bulbar_onset", "log_delta_fs", "svc", "csf_pnfh",
]  # fmt: skip
DAYS_PER_MONTH = 30.4375  # 365.25 / 12, exactly representable


def mirocals(seed: int) -> pd.DataFrame:
    """A simulated MIROCALS-like trial (n = 220), analysis columns only."""
    frame = simulate_mirocals(220, seed=seed)
    frame["log_delta_fs"] = np.log(frame["delta_fs"])
    return frame[MIROCALS_COLUMNS]


def gbsg2_monthly() -> pd.DataFrame:
    """GBSG2 with follow-up in whole months, ``ceiling(days / 30.4375)``."""
    frame = pd.read_csv(DATA / "gbsg2.csv")
    frame["time"] = np.ceil(frame["time"] / DAYS_PER_MONTH).astype(int)
    return frame


def _write(frame: pd.DataFrame, name: str) -> None:
    path = DATA / name
    frame.to_csv(path, index=False, float_format="%.17g", lineterminator="\n")
    back = pd.read_csv(path, float_precision="round_trip")
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_dtype=False)
    print(f"wrote {path} ({len(frame)} rows)")


def main() -> None:
    """Write the CSVs and check that they read back exactly."""
    _write(mirocals(3), "mirocals_seed3.csv")
    # A trial where lifelines' default Newton-Raphson diverges on the adjusted model.
    _write(mirocals(10093), "mirocals_seed10093.csv")
    _write(gbsg2_monthly(), "gbsg2_monthly.csv")


if __name__ == "__main__":
    main()
