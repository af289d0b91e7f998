"""Process faults: `stratify run` killed, interrupted or crowded, as a subprocess.

Every case runs the real command (``python -m stratify.cli run``) in its own process group
against a store of its own, injects one fault, and checks what a trial's analyst would
check afterwards: the exit status and the one line on stderr, the runs in the store (none
left RUNNING), the processes (none left behind) and that a rerun completes. The harness is
``fault_kit.py``; the store's faults (cases 6 and 7) are in ``test_faults_store.py``, so
that the two halves run side by side on the two test workers.

1. SIGKILL of a local (joblib) worker while cross-fitting: one-line error, exit 1.
2. SIGKILL of a Dask worker: the run completes, with the numbers of an undisturbed run.
3. SIGINT of the parent while cross-fitting (local and Dask; no run created) and
   while logging (the run ends KILLED with an ``error`` tag).
4. SIGKILL of the parent while its run is open: the next run marks it KILLED.
5. Four runs at once into one embedded store: nothing lost, the database intact.

Linux only: ``/proc``. About a minute and a half on two busy cores.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from mlflow import MlflowClient

from fault_kit import (
    CONFIG,
    LEARNER,
    LOGGING_ONLY,
    LONG,
    SMALL,
    Stratify,
    _comparable,
    _kill,
    artifacts,
    busy_worker,
    logged_metrics,
    runs,
    store_uri,
    strays,
    wait_for_run,
)
from stratify.config import load_config
from stratify.pipeline import execution
from stratify.pipeline.experiment import learn, load_trial, run_metrics
from stratify.pipeline.explanation import explain_learners
from stratify.trial import analyse_trial

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, float]]:
    """The metrics of an undisturbed ``SMALL`` run, computed here in one process:
    ``{"parent": ..., LEARNER: ...}`` (results do not depend on the backend or workers)."""
    config = load_config(CONFIG, [*SMALL, "execution.n_jobs=1"])
    data = load_trial(config)
    analysis = analyse_trial(data, horizon=config.horizon, cutpoints=config.data.cutpoints)
    with execution.backend(config.execution):
        evaluation = learn(config, data)
        explained = explain_learners(config, data, evaluation, analysis)
    learner = evaluation.learners[LEARNER].metrics | explained.learners[LEARNER].metrics()
    parent = run_metrics(analysis, data, evaluation, explained)
    return {"parent": _comparable(parent), LEARNER: _comparable(learner)}


# ----------------------------------------------------------------------------- 1, 2


@pytest.mark.slow  # a worker killed mid-run, then a rerun: 35 s; CI runs it (`pytest -m slow`)
def test_a_local_worker_killed_mid_run_is_one_line_and_a_rerun_completes(store, reference):
    with Stratify(store, *LONG) as run:
        _kill(busy_worker(run))
        assert run.wait() == 1
        assert run.error_lines() == [
            "error: a worker process died (killed, or out of memory) during the parallel "
            "work; rerun, with a lower execution.n_jobs if memory is short"
        ]
        assert strays(run) == []
    assert runs(store) == []  # the run is created only once the work is done
    with Stratify(store, *SMALL) as rerun:
        assert rerun.wait() == 0, rerun.err
    assert logged_metrics(store) == reference


@pytest.mark.slow  # 15-30 s of subprocess runs; CI runs it
def test_a_dask_worker_killed_mid_run_is_replaced_and_the_numbers_do_not_change(store, reference):
    with Stratify(store, *SMALL, "execution.backend=dask") as run:
        _kill(busy_worker(run))
        assert run.wait() == 0, run.err
        assert run.err == ""
        assert strays(run) == []
    assert [r.info.status for r in runs(store)] == ["FINISHED", "FINISHED"]
    assert logged_metrics(store) == reference


# ----------------------------------------------------------------------------- 3


@pytest.mark.slow  # a real run interrupted, on each backend: 13-16 s each; CI runs it
@pytest.mark.parametrize("backend", ["local", "dask"])
def test_ctrl_c_while_cross_fitting_creates_no_run_and_leaves_no_process(store, backend):
    with Stratify(store, *LONG, f"execution.backend={backend}") as run:
        busy_worker(run)
        run.signal(signal.SIGINT)
        assert run.wait() == 130
        assert run.error_lines() == ["interrupted"]
        assert strays(run) == []
    assert runs(store) == []


@pytest.mark.slow  # 15-30 s of subprocess runs; CI runs it
def test_ctrl_c_while_logging_ends_the_run_killed_and_a_rerun_completes(store):
    with Stratify(store, *LOGGING_ONLY) as run:
        wait_for_run(store, run)
        run.signal(signal.SIGINT)
        assert run.wait() == 130
        assert run.error_lines() == ["interrupted"]
    [killed] = runs(store)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["error"] == "interrupted by the user"
    with Stratify(store, *LOGGING_ONLY) as rerun:
        assert rerun.wait() == 0, rerun.err
    assert sorted(r.info.status for r in runs(store)) == ["FINISHED", "KILLED"]


# ----------------------------------------------------------------------------- 4


@pytest.mark.slow  # 15-30 s of subprocess runs; CI runs it
def test_a_run_whose_process_was_killed_is_marked_killed_by_the_next_run(store):
    with Stratify(store, *SMALL) as run:
        orphan = wait_for_run(store, run)  # its learner's run too, if the kill comes late
        run.proc.kill()
        run.wait()
        assert strays(run) == []  # idle joblib workers end with the process that started them
    left = {r.info.run_id: r for r in runs(store)}
    assert {r.info.status for r in left.values()} == {"RUNNING"}
    tags = left[orphan].data.tags
    assert (tags["stratify.host"], tags["stratify.pid"]) == (socket.gethostname(), str(run.pid))
    assert tags["stratify.process_start"].startswith("boot=")

    with Stratify(store, *LOGGING_ONLY) as rerun:
        assert rerun.wait() == 0, rerun.err
    notes = [line for line in rerun.error_lines() if line.startswith("stratify: marked run")]
    assert len(notes) == len(left)
    expected = f"the process that ran it (pid {run.pid} on {socket.gethostname()}) ended"
    for run_id in left:
        swept = MlflowClient(store_uri(store)).get_run(run_id)
        assert swept.info.status == "KILLED"
        assert swept.data.tags["error"] == f"{expected} without closing it"
    assert sum(r.info.status == "FINISHED" for r in runs(store)) == 1


# ----------------------------------------------------------------------------- 5


@pytest.mark.slow  # 15-30 s of subprocess runs; CI runs it
def test_four_runs_at_once_into_one_store_lose_nothing(store, reference):
    seeds = [11, 12, 13, 14]
    jobs = [Stratify(store, *SMALL, "execution.n_jobs=1", f"seed={s}") for s in seeds]
    try:
        for job in jobs:
            assert job.wait() == 0, job.err
    finally:
        for job in jobs:
            job.kill()
    found = runs(store)
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == len(children) == len(seeds)
    assert {r.info.status for r in found} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {p.info.run_id for p in parents}
    assert sorted(p.data.params["seed"] for p in parents) == [str(s) for s in seeds]
    for parent in parents:
        assert set(parent.data.metrics) == set(reference["parent"])
    for child in children:
        assert set(child.data.metrics) == set(reference[LEARNER])
    client = MlflowClient(store_uri(store))
    files = [sorted(artifacts(client, r.info.run_id)) for r in parents]
    assert "report.html" in files[0]
    assert all(f == files[0] for f in files)
    files = [sorted(artifacts(client, r.info.run_id)) for r in children]
    assert all(f == files[0] for f in files)
    with closing(sqlite3.connect(store / "mlflow.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
