"""Shared fixtures: small trials made here with fixed seeds, and a throwaway MLflow store."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def trial_frame() -> pd.DataFrame:
    """A 200-patient two-arm trial with one numeric, one binary and one categorical covariate."""
    rng = np.random.default_rng(20251126)
    n = 200
    arm = rng.permutation(np.repeat([0, 1], n // 2))
    age = rng.normal(60, 10, n)
    stage = rng.choice(["I", "II", "III"], n)
    marker = rng.lognormal(7.6, 0.7, n)
    rate = 0.002 * np.exp(0.03 * (age - 60) - 0.4 * arm + 0.3 * (stage == "III"))
    time = rng.exponential(1 / rate)
    event = (time < 640).astype(int)
    return pd.DataFrame(
        {
            "time": np.minimum(time, 640.0).round(1),
            "event": event,
            "arm": arm,
            "age": age.round(1),
            "male": rng.integers(0, 2, n),
            "stage": stage,
            "marker": marker.round(0),
        }
    )


@pytest.fixture(scope="session")
def _empty_store_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its schema created once (migrations take seconds)."""
    from stratify.tracking.tracker import STORE_DB, Store, Tracker

    folder = tmp_path_factory.mktemp("template") / "mlruns"
    Tracker(Store.from_uri(str(folder)))
    return folder / STORE_DB


@pytest.fixture
def store(tmp_path: Path, _empty_store_db: Path) -> Path:
    """A folder for an embedded MLflow store, private to the test, schema already in place."""
    folder = tmp_path / "mlruns"
    folder.mkdir()
    shutil.copy(_empty_store_db, folder / _empty_store_db.name)
    return folder
