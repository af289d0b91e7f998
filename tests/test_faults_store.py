"""Store faults: `stratify run` against a tracking store that does not work or a disk that
fills up, as a subprocess (the harness is ``fault_kit.py``; the process faults, cases 1-5,
are in ``test_faults.py``).

6. A tracking URI that does not work (closed port, unknown host, corrupt database,
   a file for a folder): one line naming tracking.uri within seconds, exit 2.
7. A full disk: for the artifacts only (a 200 kB tmpfs; the run ends FAILED, no report
   file), and for every file, the database included, from mid-run on (RLIMIT_FSIZE 0:
   the run cannot even be closed; the next run marks it KILLED).

Linux only: ``/proc``, ``prlimit``; the artifacts case skips without ``unshare`` and
mount namespaces. About a minute on two busy cores.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest
from mlflow import MlflowClient

from fault_kit import (
    LOGGING_ONLY,
    Stratify,
    _writes_fail_past_the_limit,
    runs,
    store_uri,
    wait_for_run,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


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
        # two real runs that fail at the store: 13 s each; CI runs them (`pytest -m slow`)
        pytest.param(
            _corrupt_store,
            "cannot open the MLflow store .*: file is not a database",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            _file_store,
            "cannot create the store folder .*: Not a directory",
            marks=pytest.mark.slow,
        ),
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


@pytest.mark.slow  # a real run on a 200 kB tmpfs: 15-30 s; CI runs it (`pytest -m slow`)
def test_a_full_disk_for_artifacts_fails_the_run_with_one_line(store, tmp_path, small_disk):
    report = tmp_path / "out" / "report.html"
    (store / "artifacts").mkdir()
    prefix = small_disk(store / "artifacts")
    with Stratify(store, *LOGGING_ONLY, report=report, prefix=prefix) as run:
        assert run.wait() == 1, run.err
    lines = run.error_lines()
    assert len(lines) == 1, run.err  # once seen as two lines under heavy load: keep stderr
    [line] = lines
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
