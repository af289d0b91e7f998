"""MLflow tracking: with :mod:`stratify.serving` (models), the only module that imports mlflow.

It owns the store (an embedded SQLite database plus an artifact folder when the
config names a folder, or any MLflow tracking URI), experiments, runs and what
is logged to them. Every run it opens is closed: FINISHED on success, FAILED
with an ``error`` tag on an exception, KILLED on Ctrl-C — never left RUNNING.
Calls take explicit run ids (no global active run), so worker processes can
log to a run that the parent created.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from filelock import FileLock
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from stratify.config import is_local_folder
from stratify.exceptions import StratifyInputError

STORE_DB = "mlflow.db"
ARTIFACTS = "artifacts"
INIT_LOCK = ".init.lock"


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

    def ui_command(self) -> str:
        """The shell command that browses this store in the MLflow UI."""
        cmd = f"mlflow ui --backend-store-uri {self.tracking_uri}"
        if self.artifact_root is not None:
            cmd += f" --default-artifact-root {self.artifact_root.as_uri()}"
        return cmd


class Tracker:
    """Log experiments and runs to one MLflow store.

    Parameters
    ----------
    store : Store
        Where to log.
    """

    def __init__(self, store: Store):
        self.store = store
        _quiet_mlflow_logs()
        try:
            if store.artifact_root is None:
                self.client = MlflowClient(tracking_uri=store.tracking_uri)
            else:
                self.client = _initialised_client(store)
        except Exception as exc:  # any failure to open a store is the same user-facing problem
            raise StratifyInputError(
                f"tracking.uri: cannot open the MLflow store {store.tracking_uri}: "
                f"{_first_line(exc)}"
            ) from None

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
                f"tracking.uri: cannot use {self.store.tracking_uri}: {_first_line(exc)}"
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
        close it with an honest status."""
        tags = dict(tags or {})
        if parent_run_id is not None:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags)
        run_id = run.info.run_id
        try:
            yield run_id
        except KeyboardInterrupt:
            self._close(run_id, "KILLED", "interrupted by the user")
            raise
        except BaseException as exc:
            self._close(run_id, "FAILED", f"{type(exc).__name__}: {_first_line(exc)}")
            raise
        self.client.set_terminated(run_id, "FINISHED")

    def _close(self, run_id: str, status: str, error: str) -> None:
        try:
            self.client.set_tag(run_id, "error", error[:5000])
        finally:
            self.client.set_terminated(run_id, status)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log parameters (values cut to MLflow's 6,000 characters)."""
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Log metrics at one step."""
        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[start : start + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure: Figure, path: str) -> None:
        """Log a matplotlib figure as an image artifact."""
        self.client.log_figure(run_id, figure, path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        """Log a text artifact (YAML, CSV, JSON)."""
        self.client.log_text(run_id, text, path)

    def log_table(self, run_id: str, table: pd.DataFrame, path: str) -> None:
        """Log a DataFrame as a CSV artifact."""
        self.client.log_text(run_id, table.to_csv(index=False), path)

    def get_run(self, run_id: str):
        """The MLflow run (for reading back what was logged)."""
        return self.client.get_run(run_id)


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


def _quiet_mlflow_logs() -> None:
    """MLflow and alembic announce schema migrations at INFO; users need not see them."""
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
