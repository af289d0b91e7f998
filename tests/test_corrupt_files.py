"""Corrupt, truncated and unreadable trial files through the real command (issue #6).

Each case writes a bad file and a small config pointing ``data.path`` at it, then runs
``python -m stratify.cli validate CONFIG`` in a fresh process: the exit status is 2 and stderr
is exactly one line, ``error: ...``, naming the file or the column, with no traceback.
"""

import gzip
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _trial() -> pd.DataFrame:
    rng = np.random.default_rng(66)
    n = 40
    return pd.DataFrame(
        {
            "time": rng.uniform(5, 700, n).round(1),
            "event": rng.integers(0, 2, n),
            "arm": np.tile([0, 1], n // 2),
            "age": rng.normal(60, 9, n).round(1),
        }
    )


def _csv() -> bytes:
    return _trial().to_csv(index=False).encode()


def _parquet() -> bytes:
    buffer = io.BytesIO()
    _trial().to_parquet(buffer, index=False)
    return buffer.getvalue()


def _cut_mid_row() -> bytes:
    """The CSV cut in its last row, after the time field and one digit of the event."""
    data = _csv().rstrip(b"\n")
    last_row = data.rindex(b"\n") + 1
    return data[: data.index(b",", last_row) + 2]


def _unreadable(path: Path) -> None:
    path.write_bytes(_csv())
    path.chmod(0)


# name of the bad file, how to make it (bytes, or a function of the path), what stderr names
CASES: dict[str, tuple[str, bytes | Callable[[Path], None], str]] = {
    "parquet truncated at half": ("trial.parquet", _parquet()[: len(_parquet()) // 2], "FILE"),
    "parquet footer only": ("trial.parquet", _parquet()[-64:], "FILE"),
    "zero-byte csv": ("trial.csv", b"", "FILE"),
    "csv truncated mid-row": ("trial.csv", _cut_mid_row(), "FILE"),
    "binary file named .csv": ("trial.csv", bytes(range(256)) * 16, "FILE"),
    "utf-16 csv": ("trial.csv", _csv().decode().encode("utf-16"), "FILE"),
    "gzip csv truncated": ("trial.csv.gz", gzip.compress(_csv(), mtime=0)[:-40], "FILE"),
    "folder named trial.csv": ("trial.csv", lambda p: p.mkdir(), "FILE"),
    "no read permission": ("trial.csv", _unreadable, "FILE"),
    "unsupported suffix": ("trial.xlsx", b"PK\x03\x04", "FILE"),
    "csv with only a header": ("trial.csv", b"time,event,arm,age\n", "FILE"),
    "time column holds text": (
        "trial.csv",
        _csv().replace(b"\n", b"\nabout a year,1,0,61\n", 1),
        "column 'time'",
    ),
    "huge line": (
        "trial.csv",
        b"time,event,arm\n" + b"9" * 5_000_000 + b",1,0\n5,0,1\n",
        "column 'time'",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.replace(" ", "-"))
def test_bad_file_is_one_line_naming_it(tmp_path, case):
    name, make, named = CASES[case]
    if case == "no read permission" and os.geteuid() == 0:
        pytest.skip("running as root: root reads any file, so an unreadable file cannot be made")
    bad = tmp_path / name
    if callable(make):
        make(bad)
    else:
        bad.write_bytes(make)
    config = tmp_path / "c.yaml"
    config.write_text(f"name: x\nhorizon: 600\ndata:\n  path: {name}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "stratify.cli", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert (str(bad) if named == "FILE" else named) in proc.stderr, proc.stderr
