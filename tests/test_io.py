"""Reading trial files: CSV, TSV and Parquet round-trip; unreadable files give one clear line."""

import pandas as pd
import pytest

from kit import ROOT
from stratify.data.datasets import load_dataset
from stratify.data.io import read_table
from stratify.exceptions import StratifyInputError


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq"])
def test_round_trip(tmp_path, trial_frame, suffix):
    path = tmp_path / f"trial{suffix}"
    if suffix in (".parquet", ".pq"):
        trial_frame.to_parquet(path, index=False)
    else:
        trial_frame.to_csv(path, index=False, sep="\t" if suffix.startswith(".tsv") else ",")
    pd.testing.assert_frame_equal(read_table(path), trial_frame, check_dtype=False)


def _message(path) -> str:
    with pytest.raises(StratifyInputError) as info:
        read_table(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    assert "data.path: file not found" in _message(tmp_path / "absent.csv")


def test_a_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "trial.csv"
    folder.mkdir()
    assert _message(folder) == f"data.path: {folder} is a folder, not a file"


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "trial.xlsx"
    path.write_text("x")
    assert "unsupported file type '.xlsx'" in _message(path)
    gz = tmp_path / "trial.gz"
    gz.write_bytes(b"x")
    assert "unsupported file type '.gz'" in _message(gz)


def test_empty_and_header_only_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in _message(empty)
    header = tmp_path / "header.csv"
    header.write_text("time,event,arm\n")
    assert "has no rows" in _message(header)


def test_ragged_csv(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text('time,event,arm\n1,0,1\n2,1,0,7,8\n"3,1\n')
    assert "cannot read" in _message(path)


def test_truncated_parquet(tmp_path, trial_frame):
    path = tmp_path / "trial.parquet"
    trial_frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[:200])
    assert "cannot read" in _message(path)


def test_binary_garbage_as_csv(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 8)
    assert "data.path" in _message(path)


def test_gbsg2_matches_the_committed_export():
    """The bundled loader and tests/data/gbsg2.csv (used for the R reference) are the same data."""
    frame = load_dataset("gbsg2")
    committed = pd.read_csv(ROOT / "tests" / "data" / "gbsg2.csv")
    assert frame.shape == (686, 10)
    pd.testing.assert_frame_equal(
        frame[committed.columns].reset_index(drop=True), committed, check_dtype=False
    )


def test_unknown_dataset():
    with pytest.raises(StratifyInputError, match="unknown dataset 'lung' \\(valid: gbsg2\\)"):
        load_dataset("lung")
