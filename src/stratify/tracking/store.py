"""The MLflow store: where runs go, how it is opened, and how its failures are worded.

A :class:`Store` is a tracking URI and, for a local folder, its artifact root:
``tracking.uri: mlruns`` becomes an embedded SQLite database (``mlruns/mlflow.db``)
beside an artifact folder (``mlruns/artifacts``); any other MLflow URI (a
server, a database) is used as is. A server is checked in seconds
(:func:`check_server`), not MLflow's minutes of retries. An embedded store's
schema is created by one process at a time (:func:`initialised_client`).
A store that fails while recording raises :class:`StoreError`.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from filelock import FileLock
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from stratify.config import is_local_folder
from stratify.exceptions import StratifyInputError

#: File name of an embedded store's SQLite database, in the store folder.
STORE_DB = "mlflow.db"
#: Folder of an embedded store's artifacts, in the store folder.
ARTIFACTS = "artifacts"
#: Lock file that lets one process at a time create an embedded store's schema.
INIT_LOCK = ".init.lock"

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


def store_failure(exc: BaseException) -> bool:
    """An OS error or an MLflow error of the store (not a wrong call)."""
    return not (isinstance(exc, MlflowException) and exc.error_code in CALLER_ERRORS)


def check_server(uri: str) -> None:
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


class Opening(threading.Thread):
    """:func:`initialised_client` on a thread (see ``Tracker(create_in_background=True)``)."""

    def __init__(self, store: Store):
        super().__init__(name="stratify-store", daemon=False)
        self.store = store
        self.client: MlflowClient | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.client = initialised_client(self.store)
        except Exception as exc:  # raised where the client is first used
            self.error = exc


def initialised_client(store: Store) -> MlflowClient:
    """A client of an embedded store whose schema exists, created by one process at a time.

    MLflow creates and migrates the SQLite schema on first use; two processes doing so at
    once (a run and ``stratify ui``, or parallel runs) corrupt the migration. The first
    query under an exclusive file lock makes sure it happens once.
    """
    with FileLock(store.artifact_root.parent / INIT_LOCK, timeout=300):
        client = MlflowClient(tracking_uri=store.tracking_uri)
        client.search_experiments(max_results=1)
    return client


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def reason(exc: BaseException) -> str:
    """Why a call failed, in a few words: the database driver's message when there is one
    (SQLAlchemy's ``(sqlite3.OperationalError) disk I/O error`` line), else the first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    for line in str(exc).splitlines():
        driver = re.match(r"\((?:\w+\.)+\w+\)\s*(.+)", line)
        if driver:
            return driver.group(1)
    return first_line(exc)


def quiet_mlflow_logs() -> None:
    """MLflow and alembic announce schema migrations at INFO, and MLflow logs a database
    error with its traceback before raising it: the user sees the error once, from us."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
