"""`TrialData`: one randomised survival trial, validated, ready for every stage.

This module owns the in-memory trial and the checks that turn a raw table into
one. Reading files and simulating trials live in :mod:`stratify.data.io` and
:mod:`stratify.data.simulate`; both end here, in :func:`TrialData.from_frame`,
so a simulated trial, a bundled dataset and a user's CSV pass the same checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sksurv.util import Surv

from stratify.exceptions import StratifyInputError

#: Columns that carry the simulator's true effects. They are never covariates.
TRUTH_COLUMNS = ("tau_rmst", "tau_surv")

MissingPolicy = Literal["error", "complete_case"]


@dataclass(frozen=True)
class TrialData:
    """A validated two-arm survival trial.

    Parameters
    ----------
    X : pandas.DataFrame
        Numeric covariates, one row per patient (categorical columns already
        one-hot encoded, first level dropped). Its index identifies patients:
        the input row number, or the id column when one is configured.
    time : numpy.ndarray of float
        Follow-up time, strictly positive.
    event : numpy.ndarray of bool
        True where the patient died (or had the event), False where censored.
    arm : numpy.ndarray of int
        1 for the treated arm, 0 for control.
    modifier : str or None
        Name of the biomarker of interest, a column of ``X``, or None.
    truth : pandas.DataFrame or None
        True per-patient effects (``tau_rmst``, ``tau_surv``) when the data
        were simulated; never used for fitting.
    arm_labels : tuple
        Original labels of (control, treated).
    n_input : int
        Rows in the input before any exclusion.
    exclusions : dict
        Number of patients excluded, by reason (empty unless an opt-in
        missing-data policy dropped patients).
    """

    X: pd.DataFrame
    time: np.ndarray
    event: np.ndarray
    arm: np.ndarray
    modifier: str | None = None
    truth: pd.DataFrame | None = None
    arm_labels: tuple = (0, 1)
    n_input: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)

    @property
    def n_patients(self) -> int:
        """Number of patients used."""
        return int(self.time.shape[0])

    @property
    def n_events(self) -> int:
        """Number of events (deaths)."""
        return int(self.event.sum())

    @property
    def covariates(self) -> list[str]:
        """Names of the (encoded) covariate columns."""
        return list(self.X.columns)

    @property
    def y(self) -> np.ndarray:
        """Outcome as a scikit-survival structured array (``event``, ``time``)."""
        return Surv.from_arrays(event=self.event, time=self.time)

    def summary(self) -> str:
        """One line saying how many patients and events were used."""
        n_treated = int(self.arm.sum())
        line = (
            f"{self.n_patients} patients used ({n_treated} treated, "
            f"{self.n_patients - n_treated} control), {self.n_events} events"
        )
        if self.exclusions:
            dropped = ", ".join(f"{v} {k}" for k, v in self.exclusions.items())
            line += f"; excluded from {self.n_input} rows: {dropped}"
        return line

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        time: str = "time",
        event: str = "event",
        arm: str = "arm",
        treated: object = 1,
        covariates: Sequence[str] | None = None,
        modifier: str | None = None,
        id_column: str | None = None,
        missing: MissingPolicy = "error",
    ) -> TrialData:
        """Validate a table and build a trial from it.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per patient.
        time, event, arm : str
            Names of the follow-up time, event indicator (0/1) and arm columns.
        treated : object
            Label of the treated arm in ``arm``; the other label is control.
        covariates : sequence of str, optional
            Covariate columns. Default: every column other than time, event,
            arm, the id column and the simulator's truth columns.
        modifier : str, optional
            Biomarker of interest; must be numeric. It is added to the
            covariates if not listed.
        id_column : str, optional
            Column identifying patients; default is the row number.
        missing : {"error", "complete_case"}
            What to do with missing covariate values: stop with an error
            naming the columns (default), or exclude those patients and report
            how many (``exclusions["missing covariates"]``).

        Returns
        -------
        TrialData

        Raises
        ------
        StratifyInputError
            With a one-line message naming the column and the problem.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"time": [5.0, 8, 3, 9], "event": [1, 0, 1, 1],
        ...                    "arm": [0, 1, 0, 1], "age": [50, 60, 70, 40]})
        >>> TrialData.from_frame(df).summary()
        '4 patients used (2 treated, 2 control), 3 events'
        """
        _require_columns(frame, [time, event, arm] + ([id_column] if id_column else []))
        covariates = _resolve_covariates(frame, covariates, time, event, arm, id_column, modifier)
        t = _check_time(frame[time], time)
        e = _check_event(frame[event], event)
        a, labels = _check_arm(frame[arm], arm, treated)
        keep, exclusions = _missing_mask(frame, covariates, missing)
        if e[keep].sum() == 0:
            raise StratifyInputError(f"column '{event}': no events among the patients used")
        if len(np.unique(a[keep])) < 2:
            raise StratifyInputError(f"column '{arm}': only one arm left after exclusions")
        X = _encode_covariates(frame.loc[keep, covariates])
        if modifier is not None and not pd.api.types.is_numeric_dtype(frame[modifier]):
            raise StratifyInputError(f"modifier column '{modifier}' must be numeric")
        index = frame.loc[keep, id_column] if id_column else frame.index[keep]
        X.index = pd.Index(index, name=id_column or "patient")
        truth = None
        if all(c in frame.columns for c in TRUTH_COLUMNS):
            truth = frame.loc[keep, list(TRUTH_COLUMNS)].set_axis(X.index)
        return cls(
            X=X,
            time=t[keep],
            event=e[keep],
            arm=a[keep],
            modifier=modifier,
            truth=truth,
            arm_labels=labels,
            n_input=len(frame),
            exclusions=exclusions,
        )


def _show(value: object) -> str:
    """A value as the user wrote it (numpy scalars shown as plain numbers)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:12]))
        raise StratifyInputError(
            f"column '{missing[0]}' not found in the data (columns: {have}"
            f"{', ...' if frame.shape[1] > 12 else ''})"
        )


def _resolve_covariates(frame, covariates, time, event, arm, id_column, modifier) -> list[str]:
    reserved = {time, event, arm, id_column}
    if covariates is None:
        covariates = [c for c in frame.columns if c not in reserved and c not in TRUTH_COLUMNS]
    covariates = list(covariates)
    for c in covariates:
        if c in TRUTH_COLUMNS:
            raise StratifyInputError(
                f"covariate '{c}' is a true effect from the simulator and cannot be a covariate"
            )
        if c in reserved:
            raise StratifyInputError(f"covariate '{c}' is the time, event, arm or id column")
    if modifier is not None:
        _require_columns(frame, [modifier])
        if modifier not in covariates:
            covariates.append(modifier)
    _require_columns(frame, covariates)
    if len(set(covariates)) != len(covariates):
        dup = next(c for c in covariates if covariates.count(c) > 1)
        raise StratifyInputError(f"covariate '{dup}' is listed twice")
    return covariates


def _check_time(col: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        raise StratifyInputError(
            f"column '{name}': non-numeric time {_show(col[bad].iloc[0])} "
            f"in row {col.index[bad][0]}"
        )
    if values.isna().any():
        raise StratifyInputError(
            f"column '{name}': {int(values.isna().sum())} missing time(s), first in row "
            f"{values.index[values.isna()][0]}"
        )
    values = values.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise StratifyInputError(f"column '{name}': times must be finite")
    if (values <= 0).any():
        i = int(np.argmax(values <= 0))
        raise StratifyInputError(
            f"column '{name}': times must be > 0; row {col.index[i]} has {values[i]:g}"
        )
    return values


def _check_event(col: pd.Series, name: str) -> np.ndarray:
    if col.isna().any():
        raise StratifyInputError(f"column '{name}': {int(col.isna().sum())} missing event value(s)")
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(int)
    values = pd.to_numeric(col, errors="coerce")
    ok = values.isin([0, 1])
    if not ok.all():
        raise StratifyInputError(
            f"column '{name}': events must be 0 (censored) or 1 (event); "
            f"found {_show(col[~ok].iloc[0])}"
        )
    return values.to_numpy(dtype=int).astype(bool)


def _check_arm(col: pd.Series, name: str, treated: object) -> tuple[np.ndarray, tuple]:
    if col.isna().any():
        raise StratifyInputError(f"column '{name}': {int(col.isna().sum())} missing arm value(s)")
    levels = list(pd.unique(col))
    if len(levels) != 2:
        shown = ", ".join(map(_show, levels[:5]))
        raise StratifyInputError(
            f"column '{name}': a two-arm trial needs exactly two arm values; found "
            f"{len(levels)} ({shown})"
        )
    match = [lv for lv in levels if lv == treated or str(lv) == str(treated)]
    if not match:
        hint = ""
        if isinstance(treated, bool):
            hint = " (YAML reads unquoted yes/no/on/off as true/false: quote the label)"
        raise StratifyInputError(
            f"treated arm label {treated!r} is not a value of column '{name}' "
            f"(values: {_show(levels[0])}, {_show(levels[1])}); set data.treated{hint}"
        )
    treated_label = match[0]
    control_label = next(lv for lv in levels if lv is not treated_label and lv != treated_label)
    return (col == treated_label).to_numpy(dtype=int), (control_label, treated_label)


def _missing_mask(frame, covariates, policy) -> tuple[np.ndarray, dict[str, int]]:
    na = frame[covariates].isna()
    rows = na.any(axis=1).to_numpy()
    if not rows.any():
        return np.ones(len(frame), dtype=bool), {}
    if policy == "error":
        counts = na.sum()
        worst = counts[counts > 0]
        detail = ", ".join(f"'{c}' ({n})" for c, n in worst.items())
        raise StratifyInputError(
            f"missing covariate values in {int(rows.sum())} patient(s): columns {detail}; "
            "set data.missing: complete_case to exclude them, or drop those covariates"
        )
    return ~rows, {"missing covariates": int(rows.sum())}


def _encode_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float; others one-hot encoded with the first level dropped."""
    parts = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(name))
            continue
        levels = sorted(pd.unique(col.astype(str)))
        if len(levels) < 2:
            raise StratifyInputError(f"covariate '{name}' has a single value ({levels[0]!r})")
        if len(levels) > 50:
            raise StratifyInputError(
                f"covariate '{name}' is non-numeric with {len(levels)} distinct values; "
                "is it an id or a free-text column?"
            )
        as_str = col.astype(str)
        for level in levels[1:]:
            parts.append((as_str == level).astype(float).rename(f"{name}={level}"))
    return pd.concat(parts, axis=1)
