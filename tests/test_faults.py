"""Process faults: `stratify run` killed, interrupted, crowded or starved, as a subprocess.

Every case runs the real command (``python -m stratify.cli run``) in its own process group
against a store of its own, injects one fault, and checks what a trial's analyst would
check afterwards: the exit status and the one line on stderr, the runs in the store (none
left RUNNING), the processes (none left behind) and that a rerun completes.

1. SIGKILL of a local (joblib) worker while cross-fitting: one-line error, exit 1.
2. SIGKILL of a Dask worker: the run completes, with the numbers of an undisturbed run.
3. SIGINT of the parent while cross-fitting (local and Dask; no run created) and
   while logging (the run ends KILLED with an ``error`` tag).
4. SIGKILL of the parent while its run is open: the next run marks it KILLED.
5. Four runs at once into one embedded store: nothing lost, the database intact.
6. A tracking URI that does not work (closed port, unknown host, corrupt database,
   a file for a folder): one line naming tracking.uri within seconds, exit 2.
7. A full disk: for the artifacts only (a 200 kB tmpfs; the run ends FAILED, no report
   file), and for every file, the database included, from mid-run on (RLIMIT_FSIZE 0:
   the run cannot even be closed; the next run marks it KILLED).

Linux only: ``/proc``, ``prlimit``; the artifacts case skips without ``unshare`` and
mount namespaces. About three minutes on two busy cores.
"""

from __future__ import annotations

import functools
import math
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, suppress
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kit import MIROCALS
from stratify.config import load_config
from stratify.pipeline import execution
from stratify.pipeline.experiment import learn, load_trial, run_metrics
from stratify.pipeline.explanation import explain_learners
from stratify.trial import analyse_trial

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

CONFIG = MIROCALS
LEARNER = "t_learner"
SMALL = [
    f"learners=[{{name: {LEARNER}, params: {{base_params: {{n_estimators: 20}}}}}}]",
    "cv.folds=3",
    "cv.repeats=2",
    "heterogeneity.n_bootstrap=50",
    "explain.n_bootstrap=20",
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


# ----------------------------------------------------------------------------- 6


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _corrupt_store(tmp_path: Path) -> str:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "mlflow.db").write_bytes(os.urandom(8192))
    return str(folder)


def _file_store(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("not a folder")
    return str(tmp_path / "a-file")


@pytest.mark.parametrize(
    ("make_uri", "message"),
    [
        (lambda tmp: _closed_port(), "no MLflow tracking server answers at .*: Connection refused"),
        (
            lambda tmp: "http://stratify-no-such-host.invalid:5000",
            "no MLflow tracking server answers at http://stratify-no-such-host.invalid:5000: .+",
        ),
        (_corrupt_store, "cannot open the MLflow store .*: file is not a database"),
        (_file_store, "cannot create the store folder .*: Not a directory"),
    ],
    ids=["closed-port", "unknown-host", "corrupt-db", "file-not-folder"],
)
def test_a_tracking_uri_that_does_not_work_is_one_line_before_the_work(tmp_path, make_uri, message):
    uri = make_uri(tmp_path)
    # the full config: cross-fitting 5 learners x 50 folds would take many minutes
    with Stratify(uri) as run:
        assert run.wait() == 2
        elapsed = time.monotonic() - run.started
    [line] = run.error_lines()
    assert re.fullmatch(f"error: tracking.uri: {message}", line), line
    assert elapsed < 60  # imports, the trial and its analysis; never the learners


# ----------------------------------------------------------------------------- 7


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """A wrapper command that runs a command with a 200 kB tmpfs mounted on a folder, in a
    mount namespace of its own (nothing to unmount afterwards); skips where not allowed."""
    script = 'mount -t tmpfs -o size=200k tmpfs "$0" && exec "$@"'

    def prefix(folder: Path) -> list[str]:
        return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(folder)]

    probe = [*prefix(tmp_path_factory.mktemp("probe")), "true"]
    if shutil.which("unshare") is None or subprocess.run(probe, check=False).returncode:
        pytest.skip("needs unshare and a mount namespace to fill a disk")
    return prefix


def test_a_full_disk_for_artifacts_fails_the_run_with_one_line(store, tmp_path, small_disk):
    report = tmp_path / "out" / "report.html"
    (store / "artifacts").mkdir()
    prefix = small_disk(store / "artifacts")
    with Stratify(store, *LOGGING_ONLY, report=report, prefix=prefix) as run:
        assert run.wait() == 1, run.err
    [line] = run.error_lines()
    assert line.startswith("error: cannot write the artifact ")
    assert line.endswith(f"to {store / 'artifacts'}: No space left on device")
    [failed] = runs(store)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["error"] == f"StoreError: {line.removeprefix('error: ')}"
    assert list(report.parent.iterdir()) == []  # no report, not even a partial one


@pytest.mark.slow  # 15-30 s of subprocess runs; CI runs it
def test_a_disk_that_fills_up_mid_run_leaves_the_run_to_the_next_one(store):
    """No file can grow any more (RLIMIT_FSIZE 0, set on the running process): neither the
    artifacts nor the database, so the run cannot even be closed; the next run closes it."""
    with Stratify(store, *LOGGING_ONLY, preexec_fn=_writes_fail_past_the_limit) as run:
        stuck = wait_for_run(store, run)
        resource.prlimit(run.pid, resource.RLIMIT_FSIZE, (0, 0))
        assert run.wait() == 1
    [line] = run.error_lines()
    assert re.fullmatch(
        rf"error: cannot write .+: \S.+; run {stuck} stays RUNNING \(\S.+\) until the next "
        "run on this store marks it KILLED",
        line,
    ), line
    assert [r.info.status for r in runs(store)] == ["RUNNING"]
    with Stratify(store, *LOGGING_ONLY) as rerun:
        assert rerun.wait() == 0, rerun.err
    closed = MlflowClient(store_uri(store)).get_run(stuck)
    assert closed.info.status == "KILLED"
    assert closed.data.tags["error"].endswith("ended without closing it")
    with closing(sqlite3.connect(store / "mlflow.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


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
