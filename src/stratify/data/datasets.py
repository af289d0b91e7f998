"""Public trials bundled with scikit-survival, as plain tables.

They go through the same validation as a user's file: this module only turns
the bundled data into a DataFrame with one row per patient.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from stratify.exceptions import StratifyInputError


def load_gbsg2() -> pd.DataFrame:
    """German Breast Cancer Study Group 2 trial (686 patients).

    Hormonal therapy (``horTh``: "no"/"yes") in node-positive breast cancer;
    recurrence-free survival ``time`` in days with event indicator ``cens``
    (1 = recurrence or death). Covariates: age, estrec, menostat, pnodes,
    progrec, tgrade, tsize.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> df = load_gbsg2()
    >>> df.shape, int(df["cens"].sum())
    ((686, 10), 299)
    """
    from sksurv.datasets import load_gbsg2 as _load

    X, y = _load()
    frame = X.astype({c: str for c in X.select_dtypes("category").columns})
    return frame.assign(time=y["time"], cens=y["cens"].astype(int))


#: Built-in datasets by config name (`data.dataset`).
DATASETS: dict[str, Callable[[], pd.DataFrame]] = {"gbsg2": load_gbsg2}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a built-in dataset by name."""
    try:
        return DATASETS[name]()
    except KeyError:
        valid = ", ".join(sorted(DATASETS))
        raise StratifyInputError(
            f"data.dataset: unknown dataset {name!r} (valid: {valid})"
        ) from None
