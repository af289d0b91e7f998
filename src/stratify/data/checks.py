"""Checks of the outcome, arm and id columns of a trial table.

Each check returns clean arrays or raises :class:`StratifyInputError` with one
line naming the column and the problem. Rows are named by their position in the
table, counting the first data row as row 1 (a CSV's line number minus one).

The helpers at the top keep those lines short and on one line whatever the
table holds: :func:`show` and :func:`label` cut long values and names (with
:mod:`stratify.exceptions`, which also escapes line breaks and other control
characters), and :func:`to_numbers` converts a column without ever raising.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError, cut
from stratify.exceptions import show as _show


def show(value: object) -> str:
    """A value as the user wrote it (numpy scalars shown as plain numbers), cut if long."""
    return _show(value.item() if isinstance(value, np.generic) else value)


def label(name: object) -> str:
    """A column or key name for a message, cut if long."""
    return cut(str(name))


def to_numbers(col: pd.Series) -> pd.Series:
    """A column as floats: NaN where a cell is missing or is not a real number.

    Never raises: dates, durations, complex numbers, lists and integers too
    large for a float all become NaN, for the caller to name as non-numeric.
    Booleans become 0 and 1.
    """
    kind = getattr(col.dtype, "kind", "O")
    if kind in "mMc":  # durations, dates, complex numbers
        return pd.Series(np.nan, index=col.index)
    try:
        values = pd.to_numeric(col, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        values = col
    if getattr(values.dtype, "kind", "O") not in "biuf":
        values = col.map(_number, na_action="ignore")
    return pd.Series(values.to_numpy(dtype=float, na_value=np.nan), index=col.index)


def _number(value: object) -> float:
    if isinstance(value, complex | np.complexfloating):
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return np.nan


def first_nested(col: pd.Series) -> int | None:
    """Position of the first cell holding a list, mapping, set or array (None if none)."""
    if getattr(col.dtype, "kind", "O") != "O":
        return None
    nested = col.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray)).to_numpy()
    return int(np.flatnonzero(nested)[0]) if nested.any() else None


def refuse_nested(col: pd.Series, what: str) -> None:
    """Raise if a cell holds a list, mapping, set or array instead of one value."""
    i = first_nested(col)
    if i is not None:
        raise StratifyInputError(
            f"{what}: row {i + 1} holds {show(col.iloc[i])}, not a single value"
        )


def _row(mask) -> int:
    """1-based position of the first row where ``mask`` holds."""
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise if any of ``columns`` is missing or appears more than once in the table.

    A missing column's message lists the columns the table has.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(label, frame.columns[:12]))
        raise StratifyInputError(
            f"column '{label(missing[0])}' not found in the data (columns: {have}"
            f"{', ...' if frame.shape[1] > 12 else ''})"
        )
    refuse_duplicate_columns(frame, columns)


def refuse_duplicate_columns(frame: pd.DataFrame, columns: Sequence[object]) -> None:
    """Raise if one of ``columns`` names more than one column of the table."""
    counts = frame.columns.value_counts()
    twice = [c for c in columns if counts.get(c, 0) > 1]
    if twice:
        raise StratifyInputError(
            f"column '{label(twice[0])}' appears {counts[twice[0]]} times in the data; "
            "give each column its own name"
        )


def check_time(col: pd.Series, name: str) -> np.ndarray:
    """Follow-up times: numeric, present, finite and > 0."""
    if pd.api.types.is_bool_dtype(col) or getattr(col.dtype, "kind", "O") in "mM":
        raise StratifyInputError(
            f"column '{label(name)}': times must be numbers (days), not {col.dtype} values "
            f"such as {show(col.iloc[0]) if len(col) else 'these'}"
        )
    values = to_numbers(col).to_numpy()
    present = col.notna().to_numpy()
    bad = np.isnan(values) & present
    if bad.any():
        raise StratifyInputError(
            f"column '{label(name)}': non-numeric time {show(col.iloc[_row(bad) - 1])} "
            f"in row {_row(bad)}"
        )
    if not present.all():
        raise StratifyInputError(
            f"column '{label(name)}': {int((~present).sum())} missing time(s), first in row "
            f"{_row(~present)}"
        )
    if not np.isfinite(values).all():
        raise StratifyInputError(
            f"column '{label(name)}': times must be finite; row {_row(~np.isfinite(values))} "
            f"has {values[~np.isfinite(values)][0]:g}"
        )
    if (values <= 0).any():
        i = int(np.argmax(values <= 0))
        raise StratifyInputError(
            f"column '{label(name)}': times must be > 0; row {i + 1} has {values[i]:g}"
        )
    return values


def check_event(col: pd.Series, name: str) -> np.ndarray:
    """Event indicator: 0/1 (or boolean), present; returned as bool."""
    if col.isna().any():
        raise StratifyInputError(
            f"column '{label(name)}': {int(col.isna().sum())} missing event value(s)"
        )
    values = to_numbers(col).to_numpy()
    ok = (values == 0) | (values == 1)
    if not ok.all():
        raise StratifyInputError(
            f"column '{label(name)}': events must be 0 (censored) or 1 (event); "
            f"found {show(col.iloc[_row(~ok) - 1])} in row {_row(~ok)}"
        )
    return values == 1


def check_arm(col: pd.Series, name: str, treated: object) -> tuple[np.ndarray, tuple]:
    """Arm column with exactly two values; returns 0/1 codes and (control, treated) labels.

    ``treated=None`` accepts only arms coded 0/1 (or False/True), where 1 is
    treated; any other coding must name the treated label, so that a trial coded
    1/2 is never analysed with its arms silently swapped.
    """
    refuse_nested(col, f"column '{label(name)}'")
    if col.isna().any():
        raise StratifyInputError(
            f"column '{label(name)}': {int(col.isna().sum())} missing arm value(s)"
        )
    levels = list(pd.unique(col))
    if len(levels) != 2:
        shown = ", ".join(map(show, levels[:5]))
        raise StratifyInputError(
            f"column '{label(name)}': a two-arm trial needs exactly two arm values; found "
            f"{len(levels)} ({shown})"
        )
    values = ", ".join(map(show, sorted(levels, key=str)))
    if treated is None:
        if {_plain(v) for v in levels} != {0, 1}:
            raise StratifyInputError(
                f"column '{label(name)}' has values {values}: "
                "set data.treated to the treated arm's label"
            )
        treated = 1
    if isinstance(treated, bool) and not pd.api.types.is_bool_dtype(col):
        raise StratifyInputError(
            f"data.treated is {treated} but column '{label(name)}' has values {values} "
            "(YAML reads unquoted yes/no/on/off as true/false: quote the label)"
        )
    match = [lv for lv in levels if _plain(lv) == _plain(treated) or str(lv) == str(treated)]
    if not match:
        raise StratifyInputError(
            f"treated arm label {show(treated)} is not a value of column '{label(name)}' "
            f"(values: {values}); set data.treated"
        )
    treated_label = match[0]
    control_label = next(lv for lv in levels if lv is not treated_label and lv != treated_label)
    codes = (col == treated_label).to_numpy(dtype=int)
    return codes, (_plain(control_label), _plain(treated_label))


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_ids(col: pd.Series, name: str) -> pd.Index:
    """Patient ids: present, single values and unique."""
    refuse_nested(col, f"id column '{label(name)}'")
    if col.isna().any():
        raise StratifyInputError(
            f"id column '{label(name)}': {int(col.isna().sum())} missing id(s), first in row "
            f"{_row(col.isna())}"
        )
    dup = col.duplicated()
    if dup.any():
        raise StratifyInputError(
            f"id column '{label(name)}': id {show(col.iloc[_row(dup) - 1])} appears more than once "
            f"({int(dup.sum())} duplicate(s))"
        )
    return pd.Index(col.to_numpy(), name=name)


def missing_mask(frame: pd.DataFrame, covariates: list[str], policy: str):
    """Rows to keep under the missing-covariate policy, and the exclusions made."""
    na = frame[covariates].isna()
    rows = na.any(axis=1).to_numpy()
    if not rows.any():
        return np.ones(len(frame), dtype=bool), {}
    if policy == "error":
        counts = na.sum()
        detail = ", ".join(f"'{label(c)}' ({n})" for c, n in counts[counts > 0].items())
        raise StratifyInputError(
            f"missing covariate values in {int(rows.sum())} patient(s): columns {detail}; "
            "set data.missing: complete_case to exclude them, or drop those covariates"
        )
    return ~rows, {"missing covariates": int(rows.sum())}
