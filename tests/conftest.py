"""Shared fixtures: small trials made here with fixed seeds, the flagship trial, GBSG2, a
small fitted run, and a throwaway MLflow store. Paths, the small run's overrides and shared
assertions are in ``kit.py``.

Session-scoped data are made once per test worker and handed out as copies; the small
fitted run is only read by the tests that use it.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit


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
def _mirocals_frame() -> pd.DataFrame:
    from stratify.data.simulate import simulate_mirocals

    return simulate_mirocals(220, seed=3)


@pytest.fixture
def mirocals_frame(_mirocals_frame) -> pd.DataFrame:
    """The flagship trial (``configs/mirocals.yaml``: 220 patients, seed 3, 90 deaths), with
    the true effects ``tau_rmst`` and ``tau_surv``; a copy the test may change."""
    return _mirocals_frame.copy()


@pytest.fixture(scope="session")
def _gbsg2():
    from sksurv.datasets import load_gbsg2

    return load_gbsg2()


@pytest.fixture
def gbsg2(_gbsg2):
    """GBSG2 as scikit-survival ships it: ``(X, y)``, 686 patients, categoricals not encoded;
    copies the test may change."""
    X, y = _gbsg2
    return X.copy(), y.copy()


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A small real experiment on the flagship config, as ``run()`` holds it before logging:
    ``config``, ``data``, ``analysis``, ``figures``, ``evaluation`` and ``explained``
    (``kit.SMALL`` with 50 bootstrap draws for the heterogeneity test and the crossover).
    Made once per test worker; tests only read it."""
    from types import SimpleNamespace

    from stratify.config import load_config
    from stratify.pipeline.experiment import analyse, learn, load_trial
    from stratify.pipeline.explanation import explain_learners

    store = tmp_path_factory.mktemp("small-run") / "mlruns"
    overrides = [f"tracking.uri={store}", *kit.SMALL_RUN]
    config = load_config(kit.MIROCALS, overrides)
    data = load_trial(config)
    analysis, figures = analyse(config, data)
    evaluation = learn(config, data)
    explained = explain_learners(config, data, evaluation, analysis)
    return SimpleNamespace(
        config=config, data=data, analysis=analysis, figures=figures, evaluation=evaluation,
        explained=explained,
    )  # fmt: skip


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
