"""Which columns are covariates, how they are transformed, and how they are encoded.

Covariates default to every column that is not the time, event, arm or id
column, nor one of the simulator's truth columns; columns that look like row
numbers or saved indexes are refused rather than silently modelled. Numeric
columns are used as they are (``log_transform`` replaces a positive column by
its natural log, named ``log_<name>``); other columns are one-hot encoded with
the first level, in sorted order, as reference.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pandas as pd

from stratify.data.checks import (
    label,
    refuse_duplicate_columns,
    refuse_nested,
    show,
    to_numbers,
)
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
            f"modifier '{label(modifier)}' is the time, event, arm or id column, or a true effect"
        )
    chosen = covariates is not None
    if not chosen:
        covariates = [c for c in frame.columns if c not in reserved and c not in TRUTH_COLUMNS]
        refuse_duplicate_columns(frame, covariates)
    covariates = list(covariates)
    for c in covariates:
        if c in TRUTH_COLUMNS:
            raise StratifyInputError(
                f"covariate '{label(c)}' is a true effect from the simulator "
                "and cannot be a covariate"
            )
        if c in reserved:
            raise StratifyInputError(f"covariate '{label(c)}' is the time, event, arm or id column")
        if c == ARM_TERM:
            raise StratifyInputError(
                f"covariate '{label(c)}' has the name of the treatment term; rename the column"
            )
    if len(set(covariates)) != len(covariates):
        dup = next(c for c in covariates if covariates.count(c) > 1)
        raise StratifyInputError(f"covariate '{label(dup)}' is listed twice")
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
            and int(col.iloc[-1]) - int(col.iloc[0]) == n - 1
        )
        if saved_index or numbered:
            raise StratifyInputError(
                f"column '{label(c)}' looks like a row number or saved index, not a covariate; "
                "set data.id to it, or list data.covariates"
            )


def numbers_as_float(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Columns of Python numbers (Parquet decimals, mixed ints and floats) as float columns.

    Such columns have the ``object`` dtype, which would otherwise make them
    categories; text, booleans and mixed columns are left as they are.
    """
    converted = [
        c
        for c in columns
        if pd.api.types.is_object_dtype(frame[c])
        and frame[c].notna().any()
        and all(_is_number(v) for v in frame[c].dropna())
    ]
    if converted:
        frame = frame.copy()
        for c in converted:
            frame[c] = to_numbers(frame[c])
    return frame


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool | np.bool_)


def refuse_infinite(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise if a numeric column among ``columns`` holds an infinite value, naming its row."""
    for c in columns:
        col = frame[c]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        kind = complex if col.dtype.kind == "c" else float
        infinite = np.isinf(col.to_numpy(dtype=kind, na_value=np.nan))
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            raise StratifyInputError(
                f"covariate '{label(c)}' has infinite values ({show(col.iloc[i])} in row {i + 1})"
            )


def log_transform(frame: pd.DataFrame, columns: Sequence[str], covariates: list[str]):
    """Replace positive numeric covariates by their natural log, named ``log_<name>``."""
    frame = frame.copy()
    covariates = list(covariates)
    for c in columns:
        if c not in covariates:
            listed = f"log_{c}" in covariates and list(columns).count(c) > 1
            reason = "is listed twice" if listed else "is not a covariate"
            raise StratifyInputError(f"data.log_transform: '{label(c)}' {reason}")
        values = to_numbers(frame[c])
        if values.isna().any() and frame[c].notna().all():
            raise StratifyInputError(f"data.log_transform: column '{label(c)}' is not numeric")
        if (values <= 0).any() or np.isinf(values).any():
            raise StratifyInputError(
                f"data.log_transform: column '{label(c)}' has values ≤ 0 or infinite; "
                "the log needs positive finite values"
            )
        name = f"log_{c}"
        if name in frame.columns:
            raise StratifyInputError(f"data.log_transform: column '{label(name)}' already exists")
        frame[name] = np.log(values)
        covariates[covariates.index(c)] = name
    return frame, covariates


def encode_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float; others one-hot encoded with the first level dropped.

    Raises
    ------
    StratifyInputError
        A numeric column has infinite or complex values, a cell holds a list or
        mapping, or a non-numeric column has one value or more than 50.
    """
    parts = [pd.DataFrame(index=frame.index)]
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(_numeric(col, name))
            continue
        refuse_nested(col, f"covariate '{label(name)}'")
        _refuse_mostly_numeric(col, name)
        as_str = col.map(_text)
        levels = sorted(pd.unique(as_str))
        if len(levels) < 2:
            shown = show(levels[0]) if levels else "none"
            raise StratifyInputError(f"covariate '{label(name)}' has a single value ({shown})")
        if len(levels) > 50:
            raise StratifyInputError(
                f"covariate '{label(name)}' is non-numeric with {len(levels)} distinct values; "
                "is it an id or a free-text column?"
            )
        for level in levels[1:]:
            parts.append((as_str == level).astype(float).rename(f"{name}={level}"))
    return pd.concat(parts, axis=1)


def _numeric(col: pd.Series, name: object) -> pd.Series:
    """A numeric covariate as floats, refusing complex and infinite values."""
    if pd.api.types.is_complex_dtype(col):
        raise StratifyInputError(f"covariate '{label(name)}' holds complex numbers")
    values = col.astype(float).rename(name)
    if np.isinf(values.to_numpy()).any():
        raise StratifyInputError(f"covariate '{label(name)}' has infinite values")
    return values


def _text(value: object) -> str:
    """A category label: bytes (a Parquet binary column) decoded, never raising."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def _refuse_mostly_numeric(col: pd.Series, name: str) -> None:
    """A numeric column with a few stray strings ('.', 'NA ', 'n/a') is a data error."""
    values = to_numbers(col)
    stray = (values.isna() & col.notna()).to_numpy()
    if values.notna().mean() >= 0.8 and stray.any():
        raise StratifyInputError(
            f"covariate '{label(name)}' is numeric but has non-numeric values such as "
            f"{show(col.iloc[int(np.flatnonzero(stray)[0])])}; fix them or leave those cells "
            "empty (missing)"
        )
