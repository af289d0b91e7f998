"""Which columns are covariates, how they are transformed, and how they are encoded.

Covariates default to every column that is not the time, event, arm or id
column, nor one of the simulator's truth columns; columns that look like row
numbers or saved indexes are refused rather than silently modelled. Numeric
columns are used as they are (``log_transform`` replaces a positive column by
its natural log, named ``log_<name>``); other columns are one-hot encoded with
the first level, in sorted order, as reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError

#: Columns that carry the simulator's true effects. They are never covariates.
TRUTH_COLUMNS = ("tau_rmst", "tau_surv")

#: The treatment's name in every model: no covariate may take it.
ARM_TERM = "arm"


def resolve_covariates(
    frame: pd.DataFrame,
    covariates: Sequence[str] | None,
    *,
    reserved: set[str],
    modifier: str | None,
) -> list[str]:
    """The covariate columns, checked; the modifier is not added here."""
    if modifier is not None and modifier in reserved | set(TRUTH_COLUMNS):
        raise StratifyInputError(
            f"modifier '{modifier}' is the time, event, arm or id column, or a true effect"
        )
    chosen = covariates is not None
    if not chosen:
        covariates = [c for c in frame.columns if c not in reserved and c not in TRUTH_COLUMNS]
    covariates = list(covariates)
    for c in covariates:
        if c in TRUTH_COLUMNS:
            raise StratifyInputError(
                f"covariate '{c}' is a true effect from the simulator and cannot be a covariate"
            )
        if c in reserved:
            raise StratifyInputError(f"covariate '{c}' is the time, event, arm or id column")
        if c == ARM_TERM:
            raise StratifyInputError(
                f"covariate '{c}' has the name of the treatment term; rename the column"
            )
    if len(set(covariates)) != len(covariates):
        dup = next(c for c in covariates if covariates.count(c) > 1)
        raise StratifyInputError(f"covariate '{dup}' is listed twice")
    if not chosen:
        _refuse_index_columns(frame, covariates)
    return covariates


def _refuse_index_columns(frame: pd.DataFrame, covariates: list[str]) -> None:
    """A saved index or a row-number column is not a covariate: say so instead of fitting it."""
    n = len(frame)
    for c in covariates:
        col = frame[c]
        saved_index = str(c).startswith("Unnamed: ")
        numbered = (
            n > 2
            and pd.api.types.is_integer_dtype(col)
            and col.is_monotonic_increasing
            and col.is_unique
            and col.iloc[-1] - col.iloc[0] == n - 1
        )
        if saved_index or numbered:
            raise StratifyInputError(
                f"column '{c}' looks like a row number or saved index, not a covariate; "
                "set data.id to it, or list data.covariates"
            )


def log_transform(frame: pd.DataFrame, columns: Sequence[str], covariates: list[str]):
    """Replace positive numeric covariates by their natural log, named ``log_<name>``."""
    frame = frame.copy()
    covariates = list(covariates)
    for c in columns:
        if c not in covariates:
            raise StratifyInputError(f"data.log_transform: '{c}' is not a covariate")
        values = pd.to_numeric(frame[c], errors="coerce")
        if values.isna().any() and frame[c].notna().all():
            raise StratifyInputError(f"data.log_transform: column '{c}' is not numeric")
        if (values <= 0).any():
            raise StratifyInputError(
                f"data.log_transform: column '{c}' has values ≤ 0; the log needs positive values"
            )
        name = f"log_{c}"
        if name in frame.columns:
            raise StratifyInputError(f"data.log_transform: column '{name}' already exists")
        frame[name] = np.log(values)
        covariates[covariates.index(c)] = name
    return frame, covariates


def encode_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float; others one-hot encoded with the first level dropped."""
    parts = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(name))
            continue
        _refuse_mostly_numeric(col, name)
        as_str = col.astype(str)
        levels = sorted(pd.unique(as_str))
        if len(levels) < 2:
            raise StratifyInputError(f"covariate '{name}' has a single value ({levels[0]!r})")
        if len(levels) > 50:
            raise StratifyInputError(
                f"covariate '{name}' is non-numeric with {len(levels)} distinct values; "
                "is it an id or a free-text column?"
            )
        for level in levels[1:]:
            parts.append((as_str == level).astype(float).rename(f"{name}={level}"))
    return pd.concat(parts, axis=1)


def _refuse_mostly_numeric(col: pd.Series, name: str) -> None:
    """A numeric column with a few stray strings ('.', 'NA ', 'n/a') is a data error."""
    numbers = pd.to_numeric(col, errors="coerce")
    stray = numbers.isna() & col.notna()
    if numbers.notna().mean() >= 0.8 and stray.any():
        raise StratifyInputError(
            f"covariate '{name}' is numeric but has non-numeric values such as "
            f"{col[stray].iloc[0]!r}; fix them or leave those cells empty (missing)"
        )
