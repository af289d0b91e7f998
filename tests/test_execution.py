"""One parallel API: joblib's local processes or a Dask cluster, with identical results."""

from __future__ import annotations

import os

import numpy as np
import pytest
from joblib import Parallel, delayed

import kit
from kit import ROOT
from stratify.config import load_config
from stratify.exceptions import StratifyInputError
from stratify.pipeline import execution
from stratify.pipeline.execution import WorkerLostError
from stratify.pipeline.experiment import learn, load_trial
from stratify.pipeline.explanation import explain_learners

SMALL = [*kit.SMALL, "cv.repeats=2"]


def _config(tmp_path, *overrides):
    return load_config(
        ROOT / "configs" / "mirocals.yaml", [f"tracking.uri={tmp_path}", *SMALL, *overrides]
    )


def _work(config):
    data = load_trial(config)
    with execution.backend(config.execution):
        evaluation = learn(config, data)
        explained = explain_learners(config, data, evaluation)
    return evaluation, explained


@pytest.mark.slow  # a Dask cluster and two learns: 24 s; CI runs it (`pytest -m slow`)
def test_dask_gives_the_same_numbers_bit_for_bit(tmp_path):
    # one local process against a Dask LocalCluster of two worker processes
    local_eval, local_expl = _work(_config(tmp_path, "execution.n_jobs=1"))
    dask_eval, dask_expl = _work(_config(tmp_path, "execution.backend=dask", "execution.n_jobs=2"))
    assert local_eval.heterogeneity_p == dask_eval.heterogeneity_p
    for label, report in local_eval.learners.items():
        other = dask_eval.learners[label]
        np.testing.assert_array_equal(report.oof.to_numpy(), other.oof.to_numpy())
        assert report.metrics.keys() == other.metrics.keys()
        for key, value in report.metrics.items():
            assert value == other.metrics[key] or (np.isnan(value) and np.isnan(other.metrics[key]))
        for estimand in ("cate_rmst", "cate_surv"):
            np.testing.assert_array_equal(
                local_expl.learners[label].benefit.explanations[estimand].values,
                dask_expl.learners[label].benefit.explanations[estimand].values,
            )
    assert local_expl.modifier.crossover == dask_expl.modifier.crossover


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path, monkeypatch):
    # Dask retries a refused connection until the client's timeout (10 s): 1 s reaches the
    # same error, sooner
    monkeypatch.setattr(execution, "CONNECT_TIMEOUT", "1s")
    config = _config(tmp_path, "execution.backend=dask", "execution.address=tcp://127.0.0.1:9")
    expected = r"^execution.address: cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    with pytest.raises(StratifyInputError, match=expected), execution.backend(config.execution):
        pass


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["execution.address=tcp://127.0.0.1:8786"], "execution.address is for backend: dask"),
        (["execution.backend=dask", "execution.address=scheduler"], "execution.address"),
        (["execution.backend=spark"], "execution.backend"),
    ],
)
def test_bad_execution_settings_are_refused(tmp_path, overrides, message):
    with pytest.raises(StratifyInputError, match=message):
        _config(tmp_path, *overrides)


def test_a_local_worker_that_dies_is_one_clear_error(tmp_path):
    config = _config(tmp_path, "execution.n_jobs=2")
    expected = r"^a worker process died \(killed, or out of memory\) during the parallel work; "
    with pytest.raises(WorkerLostError, match=expected), execution.backend(config.execution):
        Parallel(n_jobs=2)(delayed(os._exit)(1) for _ in range(2))
