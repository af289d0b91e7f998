"""Reading trial tables from CSV and Parquet files, with errors a user can act on.

This module owns turning a file into a :class:`pandas.DataFrame`; what the
columns mean and whether they are valid is :mod:`stratify.data.trial_data`'s job.

A file that cannot be read gives one line naming the file and what is wrong
with it: missing, a folder, unreadable, empty, truncated mid-row, not UTF-8
(with a guess at what it is: UTF-16, Parquet, gzip, a workbook), or corrupt.
"""

from __future__ import annotations

import csv
import gzip
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from stratify.exceptions import StratifyInputError, one_line_errors

_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".csv.gz": lambda p: pd.read_csv(p, compression="gzip"),
    ".tsv.gz": lambda p: pd.read_csv(p, sep="\t", compression="gzip"),
    ".parquet": lambda p: pd.read_parquet(p),
    ".pq": lambda p: pd.read_parquet(p),
}

#: What a file that is not UTF-8 text probably is, by its first bytes.
_SIGNATURES = {
    b"\xff\xfe": "is UTF-16 text; save it as UTF-8",
    b"\xfe\xff": "is UTF-16 text; save it as UTF-8",
    b"PAR1": "is a Parquet file; give it the suffix .parquet",
    b"\x1f\x8b": "is gzip-compressed; give it the suffix .csv.gz",
    b"PK\x03\x04": "is a zip archive or a spreadsheet workbook; export the sheet as CSV",
}

#: Bytes at the end of a CSV searched for its last line (longer last lines are not checked).
_TAIL = 65536


def _suffix(path: Path) -> str:
    """The file type: the last suffix, or the last two for compressed text (``.csv.gz``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return "".join(suffixes[-2:])
    return path.suffix.lower()


@one_line_errors
def read_table(path: str | Path, *, field: str = "data.path") -> pd.DataFrame:
    """Read a CSV, TSV (optionally gzip-compressed) or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or Path
        The file; its suffix selects the reader: ``.csv``, ``.tsv``,
        ``.csv.gz``, ``.tsv.gz``, ``.parquet`` or ``.pq``.
    field : str
        Config field named in error messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    StratifyInputError
        The file is missing, a folder, unreadable, has an unsupported suffix,
        is empty or has no rows or columns, ends mid-row, is not UTF-8 text, or
        cannot be parsed (truncated or corrupt); one line naming the file.
    """
    path = Path(path)
    suffix = _suffix(path)
    reader = _READERS.get(suffix)
    if reader is None:
        raise StratifyInputError(
            f"{field}: unsupported file type '{suffix}' for {path} "
            f"(supported: {', '.join(_READERS)})"
        )
    _require_file(path, field)
    try:
        with warnings.catch_warnings():
            # mixed types in a column: the checks of each column say what is wrong
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = reader(path)
    except pd.errors.EmptyDataError:
        raise StratifyInputError(f"{field}: {path} is empty") from None
    except Exception as exc:  # any failure to parse the bytes is the file's
        raise StratifyInputError(f"{field}: cannot read {path}: {_reason(exc, path)}") from None
    if frame.shape[1] == 0:
        raise StratifyInputError(f"{field}: {path} has no columns")
    if frame.empty:
        raise StratifyInputError(f"{field}: {path} has no rows")
    if suffix in (".csv", ".tsv"):
        _refuse_truncated_row(path, frame, "\t" if suffix == ".tsv" else ",", field)
    return frame


def _require_file(path: Path, field: str) -> None:
    """Raise unless ``path`` is an existing regular file."""
    try:
        if path.is_file():
            return
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte in it
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StratifyInputError(f"{field}: cannot read {path}: {reason}") from None
    if exists and path.is_dir():
        raise StratifyInputError(f"{field}: {path} is a folder, not a file")
    if exists:
        raise StratifyInputError(f"{field}: {path} is not a regular file")
    raise StratifyInputError(f"{field}: file not found: {path}")


def _reason(exc: Exception, path: Path) -> str:
    """What is wrong with the file, in a few words, from the reader's exception."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if _suffix(path) in (".parquet", ".pq"):
        return f"not a valid Parquet file ({_first_line(exc)})"
    if isinstance(exc, UnicodeDecodeError):
        head = _head(path)
        for signature, what in _SIGNATURES.items():
            if head.startswith(signature):
                return f"the file {what}"
        return (
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
            "save it as UTF-8"
        )
    if isinstance(exc, EOFError | gzip.BadGzipFile) or type(exc).__module__ == "zlib":
        return f"compressed data truncated or corrupt ({_first_line(exc)})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _first_line(exc)


def _first_line(exc: BaseException, width: int = 160) -> str:
    """The first line of the exception's message, without pyarrow's preamble, cut if long."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    first = first.removeprefix("Could not open Parquet input source '<Buffer>': ")
    if isinstance(exc, LookupError | TypeError | AttributeError) or not first:
        first = f"{type(exc).__name__}: {first}".rstrip(": ")
    return first if len(first) <= width else first[: width - 1] + "…"


def _head(path: Path, size: int = 4) -> bytes:
    """The first bytes of the file (decompressed for ``.gz``); empty if unreadable."""
    try:
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError):
        return b""


def _refuse_truncated_row(path: Path, frame: pd.DataFrame, sep: str, field: str) -> None:
    """Raise if the file ends mid-row: no final newline and a short last line.

    pandas fills the missing fields of a short row with NaN, which would turn a
    truncated file into missing values instead of an error.
    """
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _TAIL))
        tail = f.read()
    if not tail or tail.endswith((b"\n", b"\r")) or (b"\n" not in tail and len(tail) == _TAIL):
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    try:
        fields = len(next(csv.reader([last], delimiter=sep)))
    except (csv.Error, StopIteration):
        return
    if fields < frame.shape[1] and frame.iloc[-1, fields:].isna().all():
        raise StratifyInputError(
            f"{field}: {path} ends in the middle of a row: its last line has {fields} of "
            f"{frame.shape[1]} fields (truncated file?)"
        )
