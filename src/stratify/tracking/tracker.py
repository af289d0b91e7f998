"""The run lifecycle: experiments, runs that always close with an honest status, what they log.

A :class:`Tracker` logs to one :class:`~stratify.tracking.store.Store`. Every
run it opens is closed: FINISHED on success, FAILED with an ``error`` tag on an
exception, KILLED on Ctrl-C or SIGTERM (held back while a run's status is being
written, so that the write completes: :mod:`stratify.tracking.signals`). Calls
take explicit run ids (no global active run), so worker processes can log to a
run that the parent created.

Opening a tracker marks the runs this host's ended processes left RUNNING as
KILLED, with an ``error`` tag saying so (:mod:`stratify.tracking.processes`).
Runs of other hosts, and of processes still alive, are never touched. A store
that fails while recording (a full disk, an unwritable database, a server gone
away) raises :class:`~stratify.tracking.store.StoreError` naming the store or
the artifact. With :mod:`stratify.serving` (models), :mod:`stratify.tracking`
is the only package that imports mlflow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlparse

import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from stratify.exceptions import StratifyInputError
from stratify.rendering import figure_png
from stratify.tracking.processes import (
    HOST_TAG,
    PID_TAG,
    START_TAG,
    orphan_error,
    process_ended,
    process_start,
    process_tags,
    running_runs,
)
from stratify.tracking.signals import HeldInterrupts, interrupts_held
from stratify.tracking.store import (
    ARTIFACTS,
    HTTP_DEFAULTS,
    SERVER_TIMEOUT,
    STORE_DB,
    Opening,
    Store,
    StoreError,
    check_server,
    first_line,
    initialised_client,
    quiet_mlflow_logs,
    reason,
    store_failure,
)

__all__ = [  # the store's names are importable from here too, as before the split
    "ARTIFACTS",
    "HOST_TAG",
    "HTTP_DEFAULTS",
    "PID_TAG",
    "SERVER_TIMEOUT",
    "START_TAG",
    "STORE_DB",
    "Store",
    "StoreError",
    "Tracker",
    "process_start",
    "process_tags",
]

_log = logging.getLogger(__name__)


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
        self._opening: Opening | None = None
        quiet_mlflow_logs()
        if store.is_server:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
            check_server(store.tracking_uri)
        if create_in_background and not store.exists:  # only an embedded store can be new
            self._opening = Opening(store)
            self.swept = []  # a new store has no runs to sweep
            return
        try:
            if store.artifact_root is None:
                self._client = MlflowClient(tracking_uri=store.tracking_uri)
            else:
                self._client = initialised_client(store)
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
            f"tracking.uri: cannot open the MLflow store {self.store.tracking_uri}: {reason(exc)}"
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
                f"tracking.uri: cannot use {self.store.tracking_uri}: {reason(exc)}"
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
        held = HeldInterrupts()
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
        held = HeldInterrupts()
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
    def _closing(self, run_id: str, held: HeldInterrupts) -> Iterator[None]:
        """Run the block, then end the run FINISHED, or KILLED/FAILED if the block raised."""
        try:
            held.release()  # a Ctrl-C that came while the run was opened is raised here
            yield
        except BaseException as exc:
            self._end_failed(run_id, exc)
            raise
        try:
            with interrupts_held(), self._writing():
                self.client.set_terminated(run_id, "FINISHED")
        except StoreError as exc:
            self._end_failed(run_id, exc)
            raise

    def _end_failed(self, run_id: str, exc: BaseException) -> None:
        """Close a run that ``exc`` stopped: KILLED on an interrupt, FAILED otherwise."""
        if isinstance(exc, KeyboardInterrupt):
            unclosed = self._close(run_id, "KILLED", "interrupted by the user")
        else:
            unclosed = self._close(run_id, "FAILED", f"{type(exc).__name__}: {first_line(exc)}")
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
        with interrupts_held():
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
        for run in list(running_runs(self.client)):
            tags = run.data.tags
            if not process_ended(tags):
                continue
            run_id = run.info.run_id
            # the process has ended, so all it wrote is in the store: this read has its last word
            if self.client.get_run(run_id).info.status != "RUNNING":
                continue
            process = f"pid {tags.get(PID_TAG)} on {tags.get(HOST_TAG)}"
            if self._close(run_id, "KILLED", orphan_error(process)) is None:
                swept.append(run_id)
                _log.warning(
                    "stratify: marked run %s (%s) KILLED: %s",
                    run_id,
                    run.info.run_name,
                    orphan_error(process),
                )
        return swept

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
            with interrupts_held():
                yield
        except (OSError, MlflowException) as exc:
            if not store_failure(exc):
                raise
            if cleanup is not None:
                cleanup()
            raise StoreError(f"{message}: {reason(exc)}") from exc

    def _discard_partial(self, run_id: str, path: str) -> None:
        if self.store.artifact_root is None:
            return
        try:
            uri = self.client.get_run(run_id).info.artifact_uri
            (Path(urlparse(uri).path) / path).unlink(missing_ok=True)
        except (OSError, MlflowException):  # best effort: the run is FAILED in any case
            pass


def _attempt(call: Callable, *args) -> str | None:
    """Call; None, or why the store refused."""
    try:
        call(*args)
    except (OSError, MlflowException) as exc:
        return reason(exc)
    return None


def _slug(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}-{digest}"
