"""MLflow tracking: with :mod:`stratify.serving` (models), the only package that imports mlflow.

It owns the store (an embedded SQLite database plus an artifact folder when the
config names a folder, or any MLflow tracking URI), experiments, runs and what
is logged to them. Every run it opens is closed: FINISHED on success, FAILED
with an ``error`` tag on an exception, KILLED on Ctrl-C or SIGTERM (held back
while a run's status is being written, so that the write completes). Calls take
explicit run ids (no global active run), so worker processes can log to a run
that the parent created.

A process killed outright (SIGKILL, the out-of-memory killer, a power cut)
cannot close its runs. Each run is therefore tagged with the process that runs
it (``stratify.host``, ``stratify.pid``, ``stratify.process_start``), and
opening a :class:`Tracker` marks the runs this host's ended processes left
RUNNING as KILLED, with an ``error`` tag saying so. Runs of other hosts, and of
processes still alive, are never touched.

A tracking server is checked when the tracker opens (seconds, not MLflow's four
minutes of retries), and a store that fails while recording (a full disk, an
unwritable database, a server gone away) raises :class:`StoreError` naming the
store or the artifact.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlparse

import pandas as pd
from filelock import FileLock
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from stratify.config import is_local_folder
from stratify.exceptions import StratifyInputError
from stratify.rendering import figure_png

STORE_DB = "mlflow.db"
ARTIFACTS = "artifacts"
INIT_LOCK = ".init.lock"

HOST_TAG = "stratify.host"
PID_TAG = "stratify.pid"
START_TAG = "stratify.process_start"
"""``boot=<boot id>;pidns=<pid namespace>;ticks=<start time>`` of the process (Linux's
``/proc``; empty elsewhere): a pid alone may since belong to another process."""

SERVER_TIMEOUT = 10
"""Seconds to wait for a tracking server's answer when the tracker opens."""

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""MLflow's retries of a failed request (7 by default: about four minutes) and its timeout,
for a server that goes away mid-run; set only where the environment does not set them."""

CALLER_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "INVALID_STATE",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
}
"""MLflow error codes that mean a call was wrong (a bug, kept with its traceback), not that
the store failed."""

_PROC = Path("/proc")
_log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store failed while recording: a full disk, an unwritable database, a server gone.

    Not the user's input and not a bug: the CLI prints the message alone and exits 1.
    """


@dataclass(frozen=True)
class Store:
    """Where runs go: a tracking URI and, for a local folder, its artifact root."""

    tracking_uri: str
    artifact_root: Path | None = None

    @classmethod
    def from_uri(cls, uri: str) -> Store:
        """A store for a folder path (created) or an MLflow tracking URI (as is)."""
        if not is_local_folder(uri):
            return cls(tracking_uri=uri)
        folder = Path(urlparse(uri).path if uri.startswith("file:") else uri).expanduser()
        try:
            (folder / ARTIFACTS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StratifyInputError(
                f"tracking.uri: cannot create the store folder {folder}: {exc.strerror}"
            ) from None
        return cls(
            tracking_uri=f"sqlite:///{(folder / STORE_DB).resolve()}",
            artifact_root=(folder / ARTIFACTS).resolve(),
        )

    @property
    def exists(self) -> bool:
        """Whether the store's database is there already (true for a server or a database
        URI: only an embedded store's database is created by stratify)."""
        if self.artifact_root is None:
            return True
        return (self.artifact_root.parent / STORE_DB).exists()

    @property
    def is_server(self) -> bool:
        """Whether the store is an MLflow tracking server (http or https)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def ui_command(self) -> str:
        """The shell command that browses this store in the MLflow UI."""
        cmd = f"mlflow ui --backend-store-uri {self.tracking_uri}"
        if self.artifact_root is not None:
            cmd += f" --default-artifact-root {self.artifact_root.as_uri()}"
        return cmd


class Tracker:
    """Log experiments and runs to one MLflow store.

    Opening a tracker checks the store (a server within :data:`SERVER_TIMEOUT`
    seconds) and closes the runs left RUNNING by ended processes of this host
    (:meth:`close_orphans`; their ids in ``swept``).

    Parameters
    ----------
    store : Store
        Where to log.
    create_in_background : bool
        If the store is an embedded one that does not exist yet, create its
        database on a thread while the caller goes on (MLflow's schema
        migrations take ~3 s); the first use of :attr:`client` waits for it and
        raises its error, if any. The thread is not a daemon: a process that is
        interrupted finishes creating the schema before it exits.

    Raises
    ------
    StratifyInputError
        Naming ``tracking.uri``, if the store cannot be reached or opened.
    """

    def __init__(self, store: Store, *, create_in_background: bool = False):
        self.store = store
        self._opening: _Opening | None = None
        _quiet_mlflow_logs()
        if store.is_server:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
            _check_server(store.tracking_uri)
        if create_in_background and not store.exists:  # only an embedded store can be new
            self._opening = _Opening(store)
            self.swept = []  # a new store has no runs to sweep
            return
        try:
            if store.artifact_root is None:
                self._client = MlflowClient(tracking_uri=store.tracking_uri)
            else:
                self._client = _initialised_client(store)
            self.swept = self.close_orphans()
        except Exception as exc:  # any failure to open a store is the same user-facing problem
            raise self._unopenable(exc) from None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client of the store (once a store created in the background is ready).

        Raises
        ------
        StratifyInputError
            Naming ``tracking.uri``, if a store created in the background could not be.
        """
        if self._opening is not None:
            self._opening.join()
            if self._opening.error is not None:
                raise self._unopenable(self._opening.error)
            self._client, self._opening = self._opening.client, None
        return self._client

    @property
    def creating(self) -> bool:
        """Whether a new embedded store is being created in the background (see ``Tracker``)."""
        return self._opening is not None

    def _unopenable(self, exc: BaseException) -> StratifyInputError:
        return StratifyInputError(
            f"tracking.uri: cannot open the MLflow store {self.store.tracking_uri}: {_reason(exc)}"
        )

    def experiment_id(self, name: str) -> str:
        """Id of the experiment ``name``, created (with its artifact folder) if needed."""
        try:
            found = self.client.get_experiment_by_name(name)
            if found is not None and found.lifecycle_stage == "deleted":
                raise StratifyInputError(
                    f"tracking.experiment: experiment '{name}' was deleted in this store; "
                    "restore it in the MLflow UI or choose another tracking.experiment"
                )
            if found is not None:
                return found.experiment_id
            location = None
            if self.store.artifact_root is not None:
                location = (self.store.artifact_root / _slug(name)).as_uri()
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":  # created concurrently
                return self.client.get_experiment_by_name(name).experiment_id
            raise StratifyInputError(
                f"tracking.uri: cannot use {self.store.tracking_uri}: {_reason(exc)}"
            ) from None

    @contextmanager
    def run(
        self,
        experiment: str,
        *,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator[str]:
        """Open a run (nested under ``parent_run_id`` if given), yield its id, and always
        close it with an honest status.

        A Ctrl-C (or SIGTERM) that comes while the run is being created or closed takes
        effect once the status is written. If the store cannot close the run (a full
        disk), it stays RUNNING until the next tracker opened on this host marks it KILLED.
        """
        tags = dict(tags or {}) | process_tags()
        if parent_run_id is not None:
            tags["mlflow.parentRunId"] = parent_run_id
        experiment_id = self.experiment_id(experiment)
        held = _HeldInterrupts()
        try:
            with self._writing():
                run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        except BaseException:
            held.release()
            raise
        with self._closing(run.info.run_id, held):
            yield run.info.run_id

    @contextmanager
    def reopen(self, run_id: str) -> Iterator[str]:
        """Open an ended or orphaned run again to add to it (a study that resumes), and
        close it as :meth:`run` does.

        The run is tagged with this process first (so that no other process takes it
        for an orphan), set RUNNING, and its ``error`` tag from the last attempt removed.
        """
        held = _HeldInterrupts()
        try:
            with self._writing():
                self.set_tags(run_id, process_tags())
                self.client.update_run(run_id, status="RUNNING")
                if "error" in self.client.get_run(run_id).data.tags:
                    self.client.delete_tag(run_id, "error")
        except BaseException:
            held.release()
            raise
        with self._closing(run_id, held):
            yield run_id

    @contextmanager
    def _closing(self, run_id: str, held: _HeldInterrupts) -> Iterator[None]:
        """Run the block, then end the run FINISHED, or KILLED/FAILED if the block raised."""
        try:
            held.release()  # a Ctrl-C that came while the run was opened is raised here
            yield
        except BaseException as exc:
            self._end_failed(run_id, exc)
            raise
        try:
            with _interrupts_held(), self._writing():
                self.client.set_terminated(run_id, "FINISHED")
        except StoreError as exc:
            self._end_failed(run_id, exc)
            raise

    def _end_failed(self, run_id: str, exc: BaseException) -> None:
        """Close a run that ``exc`` stopped: KILLED on an interrupt, FAILED otherwise."""
        if isinstance(exc, KeyboardInterrupt):
            unclosed = self._close(run_id, "KILLED", "interrupted by the user")
        else:
            unclosed = self._close(run_id, "FAILED", f"{type(exc).__name__}: {_first_line(exc)}")
        if unclosed is None:
            return
        note = (
            f"run {run_id} stays RUNNING ({unclosed}) until the next run on this store "
            "marks it KILLED"
        )
        if isinstance(exc, StoreError):
            raise StoreError(f"{exc}; {note}") from exc
        _log.warning("stratify: %s", note)

    def _close(self, run_id: str, status: str, error: str) -> str | None:
        """Tag a run with ``error`` and end it with ``status``; None, or why it stays open."""
        with _interrupts_held():
            _attempt(self.client.set_tag, run_id, "error", error[:5000])  # the status matters more
            return _attempt(self.client.set_terminated, run_id, status)

    def close_orphans(self) -> list[str]:
        """Mark runs that ended processes of this host left RUNNING as KILLED.

        A run qualifies when its ``stratify.host`` is this host and the process its
        ``stratify.pid`` and ``stratify.process_start`` name no longer runs (or this
        host restarted since). Runs of other hosts, of live processes, or without those
        tags (made by other tools) are left alone.

        Returns
        -------
        list of str
            Ids of the runs marked KILLED.
        """
        swept = []
        for run in list(self._orphans()):
            tags = run.data.tags
            if not _process_ended(tags):
                continue
            run_id = run.info.run_id
            # the process has ended, so all it wrote is in the store: this read has its last word
            if self.client.get_run(run_id).info.status != "RUNNING":
                continue
            process = f"pid {tags.get(PID_TAG)} on {tags.get(HOST_TAG)}"
            if self._close(run_id, "KILLED", _orphan_error(process)) is None:
                swept.append(run_id)
                _log.warning(
                    "stratify: marked run %s (%s) KILLED: %s",
                    run_id,
                    run.info.run_name,
                    _orphan_error(process),
                )
        return swept

    def _orphans(self) -> Iterator:
        """RUNNING runs of this host, in every active experiment of the store."""
        experiments = [
            e.experiment_id
            for e in _pages(lambda token: self.client.search_experiments(page_token=token))
        ]
        if not experiments:
            return iter(())
        running = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{socket.gethostname()}'"
        return _pages(
            lambda token: self.client.search_runs(
                experiments, filter_string=running, page_token=token
            )
        )

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log parameters (values cut to MLflow's 6,000 characters)."""
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        with self._writing():
            for start in range(0, len(items), 100):
                self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Log metrics at one step."""
        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        with self._writing():
            for start in range(0, len(items), 1000):
                self.client.log_batch(run_id, metrics=items[start : start + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""
        with self._writing():
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure: Figure, path: str) -> None:
        """Log a matplotlib figure as a PNG artifact (:func:`stratify.rendering.figure_png`:
        the report embeds the same rendering)."""
        png = figure_png(figure)
        with self.writing_artifact(run_id, path), TemporaryDirectory() as folder:
            local = Path(folder) / Path(path).name
            local.write_bytes(png)
            parent = Path(path).parent.as_posix()
            self.client.log_artifact(run_id, str(local), None if parent == "." else parent)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        """Log a text artifact (YAML, CSV, JSON)."""
        with self.writing_artifact(run_id, path):
            self.client.log_text(run_id, text, path)

    def log_table(self, run_id: str, table: pd.DataFrame, path: str) -> None:
        """Log a DataFrame as a CSV artifact."""
        self.log_text(run_id, table.to_csv(index=False), path)

    def get_run(self, run_id: str):
        """The MLflow run (for reading back what was logged)."""
        return self.client.get_run(run_id)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A store that fails to record raises :class:`StoreError` naming the store."""
        with self._failing_as(f"cannot write to the MLflow store {self.store.tracking_uri}"):
            yield

    @contextmanager
    def writing_artifact(self, run_id: str, path: str) -> Iterator[None]:
        """Write the artifact ``path`` of a run in the block (e.g. a model through MLflow).

        A failure to write it (a full disk, a server gone) raises :class:`StoreError`
        naming it and the store; what was written of it is removed from a local
        artifact folder.
        """
        where = self.store.artifact_root or self.store.tracking_uri
        with self._failing_as(
            f"cannot write the artifact {path} of run {run_id} to {where}",
            cleanup=lambda: self._discard_partial(run_id, path),
        ):
            yield

    @contextmanager
    def _failing_as(self, message: str, cleanup: Callable[[], None] | None = None):
        """Run a store call with Ctrl-C held; a failure of the store becomes
        ``StoreError(f"{message}: {reason}")``, after ``cleanup()``.

        Ctrl-C is held until the block ends so that it never lands inside a database
        transaction (an interrupted one can keep SQLite locked against closing the
        run); MLflow reads the run from the database even to write an artifact.
        """
        try:
            with _interrupts_held():
                yield
        except (OSError, MlflowException) as exc:
            if not _store_failure(exc):
                raise
            if cleanup is not None:
                cleanup()
            raise StoreError(f"{message}: {_reason(exc)}") from exc

    def _discard_partial(self, run_id: str, path: str) -> None:
        if self.store.artifact_root is None:
            return
        try:
            uri = self.client.get_run(run_id).info.artifact_uri
            (Path(urlparse(uri).path) / path).unlink(missing_ok=True)
        except (OSError, MlflowException):  # best effort: the run is FAILED in any case
            pass


def process_tags() -> dict[str, str]:
    """The tags naming this process on its runs, which :meth:`Tracker.close_orphans` reads.

    Returns
    -------
    dict of str to str
        ``stratify.host``, ``stratify.pid`` and ``stratify.process_start``. A run
        reopened by another process (a resumed study) should be tagged with them again.
    """
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), START_TAG: _process_start(pid)}


def _orphan_error(process: str) -> str:
    return f"the process that ran it ({process}) ended without closing it"


def _process_start(pid: int) -> str:
    """``boot=...;pidns=...;ticks=...`` of a live process; ``""`` if there is none, or no
    ``/proc`` to tell."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink(_PROC / str(pid) / "ns/pid")
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie: ended, only not yet reaped
        return ""
    return f"boot={boot};pidns={pidns};ticks={fields[19]}"  # field 22 of proc(5)


def _fields(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def _process_ended(tags: Mapping[str, str]) -> bool:
    """Whether the process a run's tags name has certainly ended (False when unsure)."""
    try:
        pid = int(tags.get(PID_TAG, ""))
    except ValueError:
        return False  # not made by stratify, or by a version that did not tag runs
    recorded = _fields(tags.get(START_TAG, ""))
    here = _fields(_process_start(os.getpid()))
    if recorded and here:
        if recorded.get("boot") != here["boot"]:
            return True  # this host restarted since: every process of then has ended
        if recorded.get("pidns") != here["pidns"]:
            return False  # another container of the same host name: its processes are unseen
        return _fields(_process_start(pid)).get("ticks") != recorded.get("ticks")
    if sys.platform == "win32":  # os.kill would end the process, not probe it
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


class _HeldInterrupts:
    """Ctrl-C and SIGTERM held back from now (main thread only) until :meth:`release`,
    which delivers them, so that writing a run's status is not cut short."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.caught: list[int] = []
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._hold) for s in self.SIGNALS}

    def _hold(self, signum, frame) -> None:
        self.caught.append(signum)

    def release(self) -> None:
        """Restore the handlers, then deliver what came meanwhile (e.g. KeyboardInterrupt)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self.previous = {}
        for signum in dict.fromkeys(self.caught):
            signal.raise_signal(signum)


@contextmanager
def _interrupts_held() -> Iterator[None]:
    held = _HeldInterrupts()
    try:
        yield
    finally:
        held.release()


def _attempt(call: Callable, *args) -> str | None:
    """Call; None, or why the store refused."""
    try:
        call(*args)
    except (OSError, MlflowException) as exc:
        return _reason(exc)
    return None


def _store_failure(exc: BaseException) -> bool:
    """An OS error or an MLflow error of the store (not a wrong call)."""
    return not (isinstance(exc, MlflowException) and exc.error_code in CALLER_ERRORS)


def _check_server(uri: str) -> None:
    """Raise StratifyInputError unless an HTTP server answers at ``uri`` (any answer will do:
    a server without ``/health``, or one that wants credentials, is there)."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT):
            return
    except urllib.error.HTTPError:
        return
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):  # TLS is MLflow's to settle with the server
            return
        reason = exc.reason
    except (OSError, ValueError) as exc:  # a timeout, a malformed address
        reason = exc
    reason = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    raise StratifyInputError(
        f"tracking.uri: no MLflow tracking server answers at {uri}: {reason}"
    ) from None


def _pages(search: Callable) -> Iterator:
    """Every item of a paged MLflow search: ``search(page_token)`` -> PagedList."""
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return


class _Opening(threading.Thread):
    """:func:`_initialised_client` on a thread (see ``Tracker(create_in_background=True)``)."""

    def __init__(self, store: Store):
        super().__init__(name="stratify-store", daemon=False)
        self.store = store
        self.client: MlflowClient | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.client = _initialised_client(self.store)
        except Exception as exc:  # raised where the client is first used
            self.error = exc


def _initialised_client(store: Store) -> MlflowClient:
    """A client of an embedded store whose schema exists, created by one process at a time.

    MLflow creates and migrates the SQLite schema on first use; two processes doing so at
    once (a run and ``stratify ui``, or parallel runs) corrupt the migration. The first
    query under an exclusive file lock makes sure it happens once.
    """
    with FileLock(store.artifact_root.parent / INIT_LOCK, timeout=300):
        client = MlflowClient(tracking_uri=store.tracking_uri)
        client.search_experiments(max_results=1)
    return client


def _slug(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}-{digest}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """Why a call failed, in a few words: the database driver's message when there is one
    (SQLAlchemy's ``(sqlite3.OperationalError) disk I/O error`` line), else the first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    for line in str(exc).splitlines():
        driver = re.match(r"\((?:\w+\.)+\w+\)\s*(.+)", line)
        if driver:
            return driver.group(1)
    return _first_line(exc)


def _quiet_mlflow_logs() -> None:
    """MLflow and alembic announce schema migrations at INFO, and MLflow logs a database
    error with its traceback before raising it: the user sees the error once, from us."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
