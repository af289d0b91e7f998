"""Checks of the outcome, arm and id columns of a trial table.

Each check returns clean arrays or raises :class:`StratifyInputError` with one
line naming the column and the problem. Rows are named by their position in the
table, counting the first data row as row 1 (a CSV's line number minus one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError


def show(value: object) -> str:
    """A value as the user wrote it (numpy scalars shown as plain numbers)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _row(mask) -> int:
    """1-based position of the first row where ``mask`` holds."""
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise if any of ``columns`` is missing, listing the columns the table has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:12]))
        raise StratifyInputError(
            f"column '{missing[0]}' not found in the data (columns: {have}"
            f"{', ...' if frame.shape[1] > 12 else ''})"
        )


def check_time(col: pd.Series, name: str) -> np.ndarray:
    """Follow-up times: numeric, present, finite and > 0."""
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        raise StratifyInputError(
            f"column '{name}': non-numeric time {show(col[bad].iloc[0])} in row {_row(bad)}"
        )
    if values.isna().any():
        raise StratifyInputError(
            f"column '{name}': {int(values.isna().sum())} missing time(s), first in row "
            f"{_row(values.isna())}"
        )
    values = values.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise StratifyInputError(f"column '{name}': times must be finite")
    if (values <= 0).any():
        i = int(np.argmax(values <= 0))
        raise StratifyInputError(
            f"column '{name}': times must be > 0; row {i + 1} has {values[i]:g}"
        )
    return values


def check_event(col: pd.Series, name: str) -> np.ndarray:
    """Event indicator: 0/1 (or boolean), present; returned as bool."""
    if col.isna().any():
        raise StratifyInputError(f"column '{name}': {int(col.isna().sum())} missing event value(s)")
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(int)
    values = pd.to_numeric(col, errors="coerce")
    ok = values.isin([0, 1])
    if not ok.all():
        raise StratifyInputError(
            f"column '{name}': events must be 0 (censored) or 1 (event); "
            f"found {show(col[~ok].iloc[0])} in row {_row(~ok)}"
        )
    return values.to_numpy(dtype=int).astype(bool)


def check_arm(col: pd.Series, name: str, treated: object) -> tuple[np.ndarray, tuple]:
    """Arm column with exactly two values; returns 0/1 codes and (control, treated) labels.

    ``treated=None`` accepts only arms coded 0/1 (or False/True), where 1 is
    treated; any other coding must name the treated label, so that a trial coded
    1/2 is never analysed with its arms silently swapped.
    """
    if col.isna().any():
        raise StratifyInputError(f"column '{name}': {int(col.isna().sum())} missing arm value(s)")
    levels = list(pd.unique(col))
    if len(levels) != 2:
        shown = ", ".join(map(show, levels[:5]))
        raise StratifyInputError(
            f"column '{name}': a two-arm trial needs exactly two arm values; found "
            f"{len(levels)} ({shown})"
        )
    values = ", ".join(map(show, sorted(levels, key=str)))
    if treated is None:
        if {_plain(v) for v in levels} != {0, 1}:
            raise StratifyInputError(
                f"column '{name}' has values {values}: set data.treated to the treated arm's label"
            )
        treated = 1
    if isinstance(treated, bool) and not pd.api.types.is_bool_dtype(col):
        raise StratifyInputError(
            f"data.treated is {treated} but column '{name}' has values {values} "
            "(YAML reads unquoted yes/no/on/off as true/false: quote the label)"
        )
    match = [lv for lv in levels if _plain(lv) == _plain(treated) or str(lv) == str(treated)]
    if not match:
        raise StratifyInputError(
            f"treated arm label {show(treated)} is not a value of column '{name}' "
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
    """Patient ids: present and unique."""
    if col.isna().any():
        raise StratifyInputError(
            f"id column '{name}': {int(col.isna().sum())} missing id(s), first in row "
            f"{_row(col.isna())}"
        )
    dup = col.duplicated()
    if dup.any():
        raise StratifyInputError(
            f"id column '{name}': id {show(col[dup].iloc[0])} appears more than once "
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
        detail = ", ".join(f"'{c}' ({n})" for c, n in counts[counts > 0].items())
        raise StratifyInputError(
            f"missing covariate values in {int(rows.sum())} patient(s): columns {detail}; "
            "set data.missing: complete_case to exclude them, or drop those covariates"
        )
    return ~rows, {"missing covariates": int(rows.sum())}
