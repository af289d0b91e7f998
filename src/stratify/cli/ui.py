"""``stratify ui``: browse a store's tracked runs in the MLflow UI, on this machine only."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify ui`` on the ``stratify`` command's subparsers."""
    ui = subparsers.add_parser("ui", help="browse tracked runs in the MLflow UI (loopback only)")
    ui.add_argument("config", nargs="?", type=Path, help="a config whose store to open")
    ui.add_argument("--store", help="store folder or tracking URI (default: ./mlruns)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    ui.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    ui.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify ui``: the MLflow UI on the store, on loopback; its exit status."""
    from stratify.config import load_config, project_root
    from stratify.tracking.tracker import Store, Tracker

    if args.config is not None:
        uri = load_config(args.config).tracking_uri
    else:
        uri = args.store or str(project_root(Path.cwd() / "stratify.yaml") / "mlruns")
    if uri.startswith(("http://", "https://")):
        print(f"that store is a tracking server already: open {uri} in a browser")
        return 0
    store = Tracker(Store.from_uri(uri)).store  # schema created before the server starts
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri]
    if store.artifact_root is not None:
        cmd += ["--default-artifact-root", store.artifact_root.as_uri()]
    cmd += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    print(f"starting the MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return subprocess.call(cmd)
