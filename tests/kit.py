"""The test kit: where the repository's files are, the small run the end-to-end tests start
from, and checks several test files share. Fixtures built on it are in ``conftest.py``.

Test files import it as ``kit`` (pyproject's ``pythonpath = ["tests"]``)::

    from kit import MIROCALS, SMALL, assert_survival_curves
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
"""The repository."""
CONFIGS = ROOT / "configs"
"""The shipped configs."""
MIROCALS = CONFIGS / "mirocals.yaml"
"""The flagship config: a simulated MIROCALS-like trial, six learners, 5 folds x 10 repeats."""
GBSG2 = CONFIGS / "gbsg2.yaml"
"""The GBSG2 config: the German Breast Cancer Study Group 2 trial, bundled with sksurv."""
DATA = ROOT / "tests" / "data"
"""Committed test data: R reference values, exported trials, saved models."""

SMALL_LEARNERS = (
    "learners=[{name: t_learner, params: {base_params: {n_estimators: 20}}}, cox_interaction]"
)
"""Two learners, one forest (20 trees: TreeSHAP, time SHAP) and one Cox model."""
SMALL_CV = ("cv.folds=3", "cv.repeats=1")
"""Cross-fitting 3 folds once: every patient still gets one out-of-fold estimate."""
SMALL = (
    SMALL_LEARNERS,
    *SMALL_CV,
    "explain.n_bootstrap=20",
    "execution.n_jobs=1",
)
"""Overrides that make the flagship config a small run of a few seconds with every part of a
real one (trial analysis, cross-fitting, benefit metrics, SHAP, the modifier's crossover,
figures, report). One process: the tests already run two at a time on two cores, and the
numbers do not depend on the number of workers. A test adds its own overrides after these
(a later override of the same key wins)."""
SMALL_RUN = (*SMALL, "heterogeneity.n_bootstrap=50", "explain.n_bootstrap=50")
"""The overrides of the ``small_run`` fixture (``conftest.py``), the report's test run."""


def assert_survival_curves(surv, shape: tuple[int, ...] | None = None, *, tol: float = 1e-12):
    """Assert that ``surv`` holds survival curves, one per row over increasing times: finite,
    in [0, 1], non-increasing along each row (up to ``tol``), and of ``shape`` if given.

    Parameters
    ----------
    surv : array-like, shape (n_patients, n_times)
        Survival probabilities at increasing times.
    shape : tuple of int, optional
        The expected shape.
    tol : float
        How much a curve may rise between two times (rounding).
    """
    surv = np.asarray(surv, dtype=float)
    if shape is not None:
        assert surv.shape == tuple(shape), f"shape {surv.shape}, expected {tuple(shape)}"
    assert surv.ndim == 2, f"expected one curve per row, got {surv.ndim} dimensions"
    assert np.isfinite(surv).all(), "survival curves hold NaN or infinite values"
    assert surv.min() >= 0 and surv.max() <= 1, f"values in [{surv.min()}, {surv.max()}]"
    rise = np.diff(surv, axis=1).max(initial=-np.inf)
    assert rise <= tol, f"a survival curve rises by {rise} between two times"
