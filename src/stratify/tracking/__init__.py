"""MLflow tracking: the store, the run lifecycle, and the team server.

:mod:`~stratify.tracking.tracker` owns the store (a folder with an SQLite
database, or an MLflow server) and the runs written to it;
:mod:`~stratify.tracking.server` runs a shared MLflow server
(``stratify server``). Names are imported lazily so that the command line can
start without importing MLflow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "STORE_DB": "tracker",
    "Store": "tracker",
    "StoreError": "tracker",
    "Tracker": "tracker",
    "process_tags": "tracker",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
