"""``stratify server``: the parser and handler of the shared MLflow tracking server command.

What the server is and what is checked before it starts:
:mod:`stratify.tracking.server`.
"""

from __future__ import annotations

import argparse
import sys

from stratify.exceptions import StratifyInputError
from stratify.tracking.server import (
    LOOPBACK,
    artifacts_destination,
    backend_store_uri,
    check_database,
    check_driver,
    check_port,
    host_patterns,
    redacted,
    serve,
    server_command,
    server_env,
    url_host,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify server`` on the ``stratify`` command's subparsers."""
    p = subparsers.add_parser(
        "server",
        help="run a shared MLflow tracking server (PostgreSQL store, proxied artifacts)",
        description="Run an MLflow tracking server that a team logs to: runs and metrics in a "
        "database, artifacts in a folder or bucket served through the server. Configs then "
        "use tracking.uri: http://HOST:PORT.",
    )
    p.add_argument(
        "--backend-store-uri",
        required=True,
        metavar="URI",
        help="postgresql+psycopg2://USER@HOST:PORT/DB (postgresql:// is read as psycopg2; "
        "postgresql+psycopg:// for psycopg 3), or sqlite:///PATH for one machine",
    )
    p.add_argument(
        "--artifacts-destination",
        default="mlartifacts",
        metavar="DEST",
        help="folder (made absolute, created) or URI (s3://..., gs://...) where artifacts "
        "are kept (default: ./mlartifacts)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default: 127.0.0.1, this machine only); 0.0.0.0 "
        "exposes the server, which has no authentication, to every machine that can reach it",
    )
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.add_argument("--workers", type=int, default=4, help="server processes (default: 4)")
    p.add_argument(
        "--allowed-hosts",
        metavar="LIST",
        help="more names clients use for this server, comma-separated, e.g. "
        "mlflow.lab.example.org (any port) or 203.0.113.7:5000; MLflow answers 403 to "
        "other Host headers than localhost, private IP addresses, this machine's name "
        "(with a --host beyond loopback) and these",
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify server`` from parsed arguments; the server's exit status.

    Raises
    ------
    StratifyInputError
        A store URI, driver, database, artifact destination or port that cannot
        work (the CLI prints it as one line).
    """
    store = backend_store_uri(args.backend_store_uri)
    check_driver(store)
    check_database(store)
    artifacts = artifacts_destination(args.artifacts_destination)
    if args.workers < 1:
        raise StratifyInputError(f"--workers: must be at least 1 (got {args.workers})")
    check_port(args.host, args.port)
    allowed = host_patterns(args.allowed_hosts, args.host)
    cmd = server_command(artifacts, args.host, args.port, args.workers, allowed)
    address = f"http://{url_host(args.host)}:{args.port}"
    print(f"starting the MLflow tracking server on {address} (Ctrl-C stops it)", flush=True)
    print(f"  store:      {redacted(store)}\n  artifacts:  {artifacts}", flush=True)
    print(f"  in configs: tracking.uri: {address}", flush=True)
    if args.host not in LOOPBACK:
        print(
            f"warning: listening on {args.host}: anyone who can reach this port can read and "
            "write runs (no authentication); keep it on a trusted network",
            file=sys.stderr,
            flush=True,
        )
    return serve(cmd, env=server_env(store))
