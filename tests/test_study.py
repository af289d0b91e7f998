"""Simulation studies: each replicate is the config run with its own seed; one MLflow run
holds the study, which resumes after a kill without duplicating a replicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock
from scipy.stats import binomtest

from kit import MIROCALS, ROOT
from stratify.config import load_config
from stratify.exceptions import StratifyInputError
from stratify.pipeline.experiment import learn, load_trial
from stratify.pipeline.study import DONE, FAILED, run_study, study_key, summarise
from stratify.tracking.tracker import Store, Tracker
from stratify.trial import analyse_trial

CONFIG = MIROCALS
FAST = ["execution.n_jobs=1", "study.first_seed=500"]


def _config(store, *overrides):
    return load_config(CONFIG, [f"tracking.uri={store}", *FAST, *overrides])


def _client(store) -> mlflow.MlflowClient:
    # through the Tracker: its file lock keeps this reader from migrating the schema while
    # a `stratify study` process creates it
    return Tracker(Store.from_uri(str(store))).client


def _study_runs(store):
    client = _client(store)
    experiment = client.get_experiment_by_name("mirocals")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id])


def _steps(store, run_id, key=DONE):
    return [m.step for m in _client(store).get_metric_history(run_id, key)]


def test_each_replicate_is_the_config_analysed_with_its_own_seed(tmp_path):
    result = run_study(_config(tmp_path, "study.replicates=3"))
    assert list(result.replicates.index) == [0, 1, 2]
    for i in range(3):
        config = load_config(CONFIG, [f"seed={500 + i}"])
        data = load_trial(config)
        expected = analyse_trial(data, horizon=config.horizon, cutpoints=config.data.cutpoints)
        row = result.replicates.loc[i]
        for key, value in expected.metrics().items():
            assert row[key] == value or (np.isnan(value) and np.isnan(row[key])), key
        truth = data.truth["tau_rmst"].mean()
        assert row["true_rmst_diff"] == truth
        d = expected.rmst_diff
        assert row["rmst_diff_covers_truth"] == float(d.ci_low <= truth <= d.ci_high)
    # the trials differ: a study of one trial repeated would be worthless
    assert (
        result.replicates["n_events"].nunique() > 1 or result.replicates["logrank_p"].nunique() == 3
    )


def test_rerun_extends_the_same_run_without_duplicates(tmp_path):
    first = run_study(_config(tmp_path, "study.replicates=2"))
    second = run_study(_config(tmp_path, "study.replicates=4"))
    third = run_study(_config(tmp_path, "study.replicates=4"))
    assert first.run_id == second.run_id == third.run_id
    assert (first.new, second.new, second.resumed, third.new, third.resumed) == (2, 2, 2, 0, 4)
    runs = _study_runs(tmp_path)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    for key in (DONE, "logrank_p", "hr_adjusted"):
        assert sorted(_steps(tmp_path, first.run_id, key)) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(first.replicates, second.replicates.loc[[0, 1]])
    assert runs[0].data.metrics["study.replicates_done"] == 4
    assert runs[0].data.tags["stratify.study_key"] == study_key(_config(tmp_path))


def test_study_key_ignores_size_level_seeds_and_place_but_not_the_design(tmp_path):
    base = study_key(_config(tmp_path))
    same = ["study.replicates=1000", "study.alpha=0.01", "seed=9", "data.simulate.seed=4",
            "execution.n_jobs=2", "tracking.uri=elsewhere"]  # fmt: skip
    assert study_key(_config(tmp_path, *same)) == base
    for change in ("data.simulate.effect=none", "data.simulate.n=300", "study.first_seed=1",
                   "horizon=500"):  # fmt: skip
        assert study_key(_config(tmp_path, change)) != base, change


@pytest.mark.slow  # 10-20 s; CI runs it
def test_dask_gives_the_same_study_bit_for_bit(tmp_path):
    local = run_study(_config(tmp_path / "local", "study.replicates=4"))
    dask = run_study(
        _config(tmp_path / "dask", "study.replicates=4", "execution.backend=dask",
                "execution.n_jobs=2")
    )  # fmt: skip
    pd.testing.assert_frame_equal(local.replicates, dask.replicates, check_exact=True)


def test_summary_rates_are_exact_binomial_and_skip_failed_and_missing():
    table = pd.DataFrame(
        {
            "logrank_p": [0.01, 0.2, 0.04, np.nan, 0.001],
            "hr_adjusted": [0.5, 0.7, 0.9, 1.1, 0.2],
            DONE: 1.0,
            FAILED: [0, 0, 0, 0, 1],
        }
    )
    summary = summarise(table, alpha=0.05).set_index("metric")
    row = summary.loc["logrank_p"]
    assert (row["n"], row["n_missing"], row["rejections"]) == (3, 1, 2)
    ci = binomtest(2, 3).proportion_ci(method="exact")
    assert row["rate"] == pytest.approx(2 / 3, abs=1e-15)
    assert (row["ci_low"], row["ci_high"]) == (ci.low, ci.high)
    assert summary.loc["hr_adjusted", "median"] == pytest.approx(0.8, abs=1e-12)  # of 4 rows
    assert pd.isna(summary.loc["hr_adjusted"].get("rate"))
    assert DONE not in summary.index and FAILED not in summary.index


def test_a_replicate_that_cannot_be_analysed_is_counted_not_fatal(tmp_path, monkeypatch):
    import stratify.trial

    real = stratify.trial.analyse_trial

    def flaky(data, **kwargs):  # the second replicate's Cox model "cannot be fitted"
        if flaky.calls == 1:
            flaky.calls += 1
            raise StratifyInputError("cox: the model cannot be fitted (simulated failure)")
        flaky.calls += 1
        return real(data, **kwargs)

    flaky.calls = 0
    monkeypatch.setattr(stratify.trial, "analyse_trial", flaky)
    result = run_study(_config(tmp_path, "study.replicates=3"))  # n_jobs=1: in this process
    assert result.replicates[FAILED].tolist() == [0.0, 1.0, 0.0]
    assert np.isnan(result.replicates.loc[1, "logrank_p"])
    run = _study_runs(tmp_path)[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["study.replicates_failed"] == 1
    assert (
        "replicate 1: cox: the model cannot be fitted" in run.data.tags["stratify.study_failures"]
    )
    assert summarise(result.replicates, 0.05).set_index("metric").loc["logrank_p", "n"] == 2


@pytest.mark.slow  # 10-20 s; CI runs it
def test_learners_in_each_replicate_give_their_heterogeneity_tests(tmp_path):
    overrides = [
        "study.replicates=1",
        "study.learners=true",
        "learners=[cox_interaction]",
        "explain.learner=null",
        "cv.repeats=1",
        "heterogeneity.n_bootstrap=50",
    ]
    result = run_study(_config(tmp_path, *overrides))
    config = load_config(CONFIG, [*overrides, "seed=500"])
    evaluation = learn(config, load_trial(config))
    row = result.replicates.loc[0]
    assert row["heterogeneity_p"] == evaluation.heterogeneity_p
    blp = evaluation.learners["cox_interaction"].metrics["heterogeneity_p_blp"]
    assert row["learner.cox_interaction.heterogeneity_p_blp"] == blp


def test_a_study_needs_a_simulated_design(tmp_path):
    config = load_config(ROOT / "configs" / "gbsg2.yaml", [f"tracking.uri={tmp_path}"])
    with pytest.raises(StratifyInputError, match=r"^data.simulate: a study draws its trials"):
        run_study(config)
    assert not (tmp_path / "mlflow.db").exists() or _study_runs(tmp_path) == []


def test_the_same_study_twice_at_once_is_refused(tmp_path):
    config = _config(tmp_path, "study.replicates=1")
    lock = FileLock(tmp_path / f".study-{study_key(config)}.lock")
    with lock, pytest.raises(StratifyInputError, match="is already running"):
        run_study(config)
    assert _study_runs(tmp_path) == []


def ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT raises KeyboardInterrupt even when the tests run in the background
    (there it is inherited ignored, and Python leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(store, replicates):
    cmd = [sys.executable, "-m", "stratify.cli", "study", str(CONFIG), f"tracking.uri={store}",
           *FAST, f"study.replicates={replicates}", "data.simulate.n=120"]  # fmt: skip
    env = os.environ | {"STRATIFY_PROGRESS": "0"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True,
                            preexec_fn=ctrl_c_as_in_a_terminal)  # fmt: skip


def _wait_for_replicates(store, count, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        runs = _study_runs(store)
        if runs and len(_steps(store, runs[0].info.run_id)) >= count:
            return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} replicates after {timeout} s")


# SIGKILL leaves the run RUNNING; the next opening of the store marks it KILLED, since its
# process has ended. SIGINT closes it KILLED itself.
WHY = {signal.SIGKILL: "ended without closing it", signal.SIGINT: "interrupted by the user"}


@pytest.mark.parametrize(
    "sig",  # a real study killed, then resumed: 23 s; CI runs both (`pytest -m slow`)
    [
        pytest.param(signal.SIGKILL, marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
    ],
)
def test_a_killed_study_resumes_where_it_stopped(tmp_path, sig):
    replicates = 8
    proc = _start(tmp_path, replicates)
    try:
        run_id = _wait_for_replicates(tmp_path, 2, proc)
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    done_before = sorted(_steps(tmp_path, run_id))
    assert 2 <= len(done_before) < replicates
    left = _client(tmp_path).get_run(run_id)
    assert left.info.status == "KILLED" and WHY[sig] in left.data.tags["error"]
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "Traceback" not in err

    again = subprocess.run(
        [sys.executable, "-m", "stratify.cli", "study", str(CONFIG), f"tracking.uri={tmp_path}",
         *FAST, f"study.replicates={replicates}", "data.simulate.n=120"],
        capture_output=True, text=True, timeout=300, env=os.environ | {"STRATIFY_PROGRESS": "0"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"{len(done_before)} already in the store" in again.stdout
    runs = _study_runs(tmp_path)
    assert [r.info.run_id for r in runs] == [run_id]  # no second run
    assert runs[0].info.status == "FINISHED" and "error" not in runs[0].data.tags
    assert runs[0].data.tags["stratify.pid"] != str(proc.pid)  # the resuming process's run now
    assert sorted(_steps(tmp_path, run_id)) == list(range(replicates))  # each exactly once
    assert sorted(_steps(tmp_path, run_id, "logrank_p")) == list(range(replicates))


def test_cli_study_bad_input_is_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "stratify.cli", "study", str(ROOT / "configs" / "gbsg2.yaml"),
         f"tracking.uri={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: data.simulate")
