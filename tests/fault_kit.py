"""The harness of the process-fault tests (``test_faults.py``, ``test_faults_store.py``):
`stratify run` as a subprocess in its own process group, and what to look at afterwards
(its runs in the store, its processes, its busy workers). Linux only: ``/proc``, ``prlimit``.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, suppress
from pathlib import Path

import pytest
from mlflow import MlflowClient

import kit
from kit import MIROCALS

CONFIG = MIROCALS
LEARNER = "t_learner"
SMALL = [
    *kit.SMALL,
    f"learners=[{{name: {LEARNER}, params: {{base_params: {{n_estimators: 20}}}}}}]",
    "cv.repeats=2",
    "heterogeneity.n_bootstrap=50",
    "tracking.log_models=false",
    "execution.n_jobs=2",
]
"""One learner, cross-fitted in 6 tasks on 2 worker processes, then explained."""
LONG = [*SMALL, "cv.repeats=10"]
"""The same with 30 cross-fitting tasks: a fault injected as soon as a worker is busy
surely lands while cross-fitting (the faulty run stops there, so this costs nothing)."""
LOGGING_ONLY = ["learners=[]"]
"""No learners: the run is the trial analysis, its figures and report, mostly logging."""
TIMEOUT = 300
"""Seconds any one `stratify run` may take before the test fails (the machine may be busy)."""


class Stratify:
    """A ``stratify run`` in its own process group; every process of it is gone afterwards.

    Parameters
    ----------
    store : Path
        The tracking store (``tracking.uri``).
    *overrides : str
        Config overrides.
    report : Path, optional
        ``--report`` target.
    prefix : list of str
        A wrapper command (e.g. ``unshare``).
    preexec_fn : callable, optional
        Run in the child before the command (resource limits).
    """

    def __init__(self, store, *overrides, report=None, prefix=(), preexec_fn=None):
        cmd = [*prefix, sys.executable, "-m", "stratify.cli", "run", str(CONFIG)]
        cmd += [f"tracking.uri={store}", *overrides]
        if report is not None:
            cmd += ["--report", str(report)]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: strays are findable, killable
            env=env | {"STRATIFY_PROGRESS": "0"},
            preexec_fn=functools.partial(ctrl_c_as_in_a_terminal, preexec_fn),
        )
        self.started = time.monotonic()
        self.out = self.err = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self) -> int:
        """Wait for the run to exit; its exit status."""
        left = TIMEOUT - (time.monotonic() - self.started)
        try:
            self.out, self.err = self.proc.communicate(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"stratify run took over {TIMEOUT} s")
        return self.proc.returncode

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the run's own process (not its workers)."""
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL every process of the run's group."""
        for pid in group(self.pid):
            _kill(pid)
        if self.proc.poll() is None:
            self.proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=30)

    def running(self) -> bool:
        return self.proc.poll() is None

    def error_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    def __enter__(self) -> Stratify:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def ctrl_c_as_in_a_terminal(then=None) -> None:
    """In the child: SIGINT handled as in a terminal (Python's KeyboardInterrupt), even when
    the tests themselves run in the background (``nohup``, ``&``), where it is inherited
    ignored and Python would leave it so; then ``then()``, if given."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if then is not None:
        then()


def _writes_fail_past_the_limit() -> None:
    """In the child: a write past RLIMIT_FSIZE fails with EFBIG instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# ----------------------------------------------------------------------------- helpers


def store_uri(store: Path) -> str:
    return f"sqlite:///{store / 'mlflow.db'}"


def runs(store: Path) -> list:
    """Every run in the store, parents and learners."""
    client = MlflowClient(store_uri(store))
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def logged_metrics(store: Path) -> dict[str, dict[str, float]]:
    """The metrics of the store's one finished run and its learner's, NaN as None."""
    found = [r for r in runs(store) if r.info.status == "FINISHED"]
    out = {}
    for r in found:
        key = r.data.tags.get("stratify.learner", "parent")
        out[key] = r.data.metrics
    return {k: _comparable(v) for k, v in out.items()}


def _comparable(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN as None: NaN is not equal to itself."""
    return {k: None if math.isnan(v) else v for k, v in metrics.items()}


def artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def wait_for_run(store: Path, run: Stratify) -> str:
    """Wait until the run's MLflow run exists (it is logging); its id."""
    db = f"file:{store / 'mlflow.db'}?mode=ro"
    while run.running() and time.monotonic() - run.started < TIMEOUT:
        try:
            with closing(sqlite3.connect(db, uri=True, timeout=30)) as conn:
                found = conn.execute("SELECT run_uuid FROM runs ORDER BY start_time").fetchall()
        except sqlite3.OperationalError:  # no database (or schema) yet
            found = []
        if found:
            return found[0][0]
        time.sleep(0.05)
    code = run.wait()
    pytest.fail(f"no run appeared; exit {code}: {run.err[-2000:]}")


WORKERS = ("joblib.externals.loky.backend.popen_loky_posix", "multiprocessing.spawn")
"""How a joblib (loky) or Dask worker process's command line starts its interpreter."""


def busy_worker(run: Stratify) -> int:
    """A worker process of the run in the middle of a learner's task: a worker by its
    command line, running, with scikit-survival's tree code loaded (which a process forked
    but not yet turned into a fresh interpreter also shows, hence the command line)."""
    while run.running() and time.monotonic() - run.started < TIMEOUT:
        for pid in group(run.pid):
            if _is_worker(pid) and _state(pid) == "R" and _maps(pid, "sksurv/tree"):
                return pid
        time.sleep(0.02)
    run.wait()
    pytest.fail(f"no busy worker seen; exit {run.proc.returncode}: {run.err[-2000:]}")


def strays(run: Stratify, wait: float = 20) -> list[int]:
    """Processes of the run's group still alive ``wait`` seconds after it exited."""
    deadline = time.monotonic() + wait
    while (left := group(run.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def group(pgid: int) -> list[int]:
    """Live (not zombie) processes in the process group ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[2] == str(pgid) and fields[0] not in "ZX":
                out.append(int(entry.name))
    return out


def _stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat (state, ppid, pgrp, ...)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else "X"


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False
    return any(worker in command for worker in WORKERS)


def _maps(pid: int, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
