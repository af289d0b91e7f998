"""``stratify server``: a shared MLflow tracking server for a team.

Runs ``mlflow server`` with a database as the backend store (PostgreSQL for a
team; SQLite for one machine) and proxied artifacts: clients only need the
server's ``http://`` address as ``tracking.uri``, never access to the database
or to the artifact folder. What can be checked in seconds is checked before
the server starts, each failure one line: the database driver is installed,
the database answers, the port is free.

PostgreSQL URIs name their driver: ``postgresql+psycopg2://`` (``pip install
'stratify[server]'``) or ``postgresql+psycopg://`` (psycopg 3). A bare
``postgresql://`` is rewritten to ``postgresql+psycopg2://``, the driver the
``server`` extra installs. The store URI reaches ``mlflow server`` through its
environment (``MLFLOW_BACKEND_STORE_URI``), not its command line, so that a
password in it is not shown by ``ps``; better still, leave the password out of
the URI and put it in ``~/.pgpass`` or ``PGPASSWORD``, which libpq reads.

The server has no authentication: it listens on 127.0.0.1 unless ``--host``
says otherwise. MLflow 3 also refuses requests whose ``Host`` header is not
localhost or a private IP address (DNS-rebinding protection); clients that
reach the server by another name need it in ``--allowed-hosts`` (this
machine's own name is added when the server listens beyond loopback).
MLflow's GenAI job runners, which stratify never uses, are off unless
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` is set.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from stratify.config import is_local_folder
from stratify.exceptions import StratifyInputError

DRIVER = "postgresql+psycopg2"
"""What a bare ``postgresql://`` URI is rewritten to."""

DRIVERS = ("postgresql+psycopg2", "postgresql+psycopg")
"""PostgreSQL drivers accepted: psycopg2 and psycopg 3."""

INSTALL_HINT = {
    "psycopg2": "pip install 'stratify[server]'",
    "psycopg": "pip install 'psycopg[binary]'",
}
"""How to install each PostgreSQL driver."""

CONNECT_TIMEOUT = 5
"""Seconds to wait for the database before giving up."""

STOP_TIMEOUT = 15
"""Seconds the server gets to shut down after Ctrl-C or SIGTERM before it is killed."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Hosts that keep the server on this machine."""

WILDCARD = ("0.0.0.0", "::", "")
"""Hosts that listen on every interface."""

MLFLOW_DEFAULT_HOSTS = (
    *("localhost", "127.0.0.1", "[::1]", "0.0.0.0"),
    *("localhost:*", "127.0.0.1:*", "[[]::1]:*", "0.0.0.0:*"),
    *("192.168.*", "10.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*"),
)
"""The ``Host`` headers MLflow 3 accepts by default: this machine's loopback names and private
IP addresses (patterns with ``*`` are matched by :func:`fnmatch.fnmatch`, where ``[[]`` is a
literal ``[``). A list given to ``mlflow server --allowed-hosts`` replaces them, so
``stratify server`` passes them along with the names it adds."""


def server_env(store: str) -> dict[str, str]:
    """The server's environment: this one, plus the store URI (kept off the command line,
    where ``ps`` shows it) and, unless set, MLflow's GenAI job runners turned off (seven
    more processes that stratify's runs never use)."""
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"} | os.environ
    return env | {"MLFLOW_BACKEND_STORE_URI": store}


def backend_store_uri(uri: str) -> str:
    """The store URI mlflow gets: a PostgreSQL URI naming its driver, or an SQLite URI.

    Raises
    ------
    StratifyInputError
        For any other kind of URI.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("postgresql", "postgres"):
        return DRIVER + uri[len(scheme) :]
    if scheme in DRIVERS or scheme == "sqlite":
        return uri
    raise StratifyInputError(
        "--backend-store-uri: use postgresql+psycopg2://USER@HOST:PORT/DB (psycopg 3: "
        f"postgresql+psycopg://...) or sqlite:///PATH (got '{redacted(uri)}'); for other "
        "stores run mlflow server directly"
    )


def redacted(uri: str) -> str:
    """``uri`` with its password, if any, replaced by ``***``."""
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def check_driver(uri: str) -> None:
    """Import the database driver the URI names.

    Raises
    ------
    StratifyInputError
        If it is not installed, with how to install it.
    """
    from sqlalchemy.engine import make_url

    try:
        make_url(uri).get_dialect().import_dbapi()
    except ImportError as exc:
        module = (exc.name or str(exc)).split(".")[0]
        hint = INSTALL_HINT.get(module, f"install the Python package {module}")
        raise StratifyInputError(
            f"--backend-store-uri: the database driver {module} is not installed: {hint}"
        ) from None
    except Exception as exc:  # an unknown dialect, a malformed URI
        raise StratifyInputError(
            f"--backend-store-uri: cannot use '{redacted(uri)}': {_first_line(exc)}"
        ) from None


def check_database(uri: str) -> None:
    """Connect once, giving up after :data:`CONNECT_TIMEOUT` seconds.

    An SQLite database need not exist yet (mlflow creates it), only its folder.

    Raises
    ------
    StratifyInputError
        If the database cannot be reached, naming the URI without its password.
    """
    if uri.startswith("sqlite:"):
        _check_sqlite_folder(uri)
        return
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        uri, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
    )
    try:
        with engine.connect():
            pass
    except Exception as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        raise StratifyInputError(
            f"--backend-store-uri: cannot connect to {redacted(uri)}: {reason}"
        ) from None
    finally:
        engine.dispose()


def _check_sqlite_folder(uri: str) -> None:
    path = uri.removeprefix("sqlite:///")
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        raise StratifyInputError(f"--backend-store-uri: no folder {folder} for {uri}")


def artifacts_destination(destination: str) -> str:
    """A folder made absolute and created, or a URI (``s3://``, ``gs://``, ...) as is.

    Raises
    ------
    StratifyInputError
        If the folder cannot be created.
    """
    if not is_local_folder(destination):
        return destination
    path = urlparse(destination).path if destination.startswith("file:") else destination
    folder = Path(path).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StratifyInputError(
            f"--artifacts-destination: cannot create {folder}: {exc.strerror}"
        ) from None
    return str(folder)


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once, as the server will.

    Raises
    ------
    StratifyInputError
        If the port is taken or the address is not one of this machine's.
    """
    if not 0 < port < 65536:
        raise StratifyInputError(f"--port: must be 1-65535 (got {port})")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StratifyInputError(
                f"--port: {port} is in use on {host}; stop what uses it or choose another --port"
            ) from None
        reason = exc.strerror or _first_line(exc)
        raise StratifyInputError(f"--host: cannot listen on {host}:{port}: {reason}") from None


def server_command(
    artifacts: str, host: str, port: int, workers: int, allowed_hosts: str | None = None
) -> list[str]:
    """The ``mlflow server`` command line (the store URI goes in its environment).

    Parameters
    ----------
    artifacts : str
        Where the server keeps artifacts (absolute folder or URI).
    host, port, workers
        Where to listen and with how many processes.
    allowed_hosts : str, optional
        MLflow's ``--allowed-hosts`` (Host headers it accepts; default: MLflow's).

    Returns
    -------
    list of str
    """
    cmd = [sys.executable, "-m", "mlflow", "server", "--serve-artifacts"]
    cmd += ["--artifacts-destination", artifacts]
    cmd += ["--host", host, "--port", str(port), "--workers", str(workers)]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    return cmd


def host_patterns(names: str | None, host: str) -> str | None:
    """MLflow's ``--allowed-hosts``: its defaults, plus the names given and, when listening
    beyond loopback, this machine's name (the address printed for clients); None (MLflow's
    defaults) when that adds nothing.

    MLflow compares the whole ``Host`` header, which carries the port
    (``mlflow.lab.example.org:5000``), so a name given without a port is
    allowed with any port.

    Parameters
    ----------
    names : str or None
        Comma-separated host names, ``name:port`` or patterns (``*`` wildcards).
    host : str
        The interface the server listens on.

    Returns
    -------
    str or None
    """
    extra = [n.strip() for n in (names or "").split(",") if n.strip()]
    if host not in LOOPBACK:
        extra.append(url_host(host))
    if not extra:
        return None
    patterns = []
    for name in extra:
        has_port = re.search(r":(\d+|\*)$", name) is not None
        literal = name.replace("[", "[[]", 1) if name.startswith("[") else name  # IPv6
        for pattern in [name] if has_port or name == "*" else [name, f"{literal}:*"]:
            if pattern not in patterns:
                patterns.append(pattern)
    return ",".join(patterns + [p for p in MLFLOW_DEFAULT_HOSTS if p not in patterns])


def serve(cmd: list[str], *, env: dict[str, str]) -> int:
    """Run the server until it exits; Ctrl-C or SIGTERM stops it (and its workers) too.

    Returns
    -------
    int
        The server's exit status.
    """
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the CLI turns SIGTERM into this too
        proc.terminate()  # mlflow forwards it to its workers
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def url_host(host: str) -> str:
    """How clients name ``host`` in a URL: this machine's name for a wildcard address."""
    if host in WILDCARD:
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
