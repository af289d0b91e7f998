"""Reading trial tables from CSV and Parquet files, with errors a user can act on.

This module owns turning a file into a :class:`pandas.DataFrame`; what the
columns mean and whether they are valid is :mod:`stratify.data.trial_data`'s job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratify.exceptions import StratifyInputError

_READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".parquet": lambda p: pd.read_parquet(p),
    ".pq": lambda p: pd.read_parquet(p),
}


def read_table(path: str | Path, *, field: str = "data.path") -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or Path
        The file; its suffix selects the reader.
    field : str
        Config field named in error messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    StratifyInputError
        The file is missing, has an unsupported suffix, is empty, or cannot be
        parsed (truncated or corrupt).
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise StratifyInputError(
            f"{field}: unsupported file type '{path.suffix}' for {path} "
            f"(supported: {', '.join(_READERS)})"
        )
    if not path.is_file():
        raise StratifyInputError(f"{field}: file not found: {path}")
    try:
        frame = reader(path)
    except pd.errors.EmptyDataError:
        raise StratifyInputError(f"{field}: {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StratifyInputError(f"{field}: cannot read {path}: {reason}") from None
    if frame.empty:
        raise StratifyInputError(f"{field}: {path} has no rows")
    return frame
