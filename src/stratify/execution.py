"""Where the work runs: joblib's own worker processes, or a Dask cluster.

All fan-out in stratify (cross-fitting tasks, learners to explain) goes through
joblib. :func:`backend` makes the config's choice joblib's backend for a block
of work: ``local`` leaves joblib's process pool (``execution.n_jobs``
workers); ``dask`` connects to the scheduler at ``execution.address`` or starts
a ``LocalCluster`` of ``n_jobs`` single-threaded worker processes, and joblib
sends its tasks there. Every task carries its own seed (a function of its
coordinates only), so results are identical, bit for bit, whatever the
backend and the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from joblib import parallel_config

from stratify.config.schema import ExecutionConfig
from stratify.exceptions import StratifyInputError

CONNECT_TIMEOUT = "10s"
"""How long to wait for a Dask scheduler before giving up."""


@contextmanager
def backend(execution: ExecutionConfig) -> Iterator[None]:
    """Run the enclosed joblib work on the configured backend.

    Parameters
    ----------
    execution : ExecutionConfig
        ``backend``, ``n_jobs`` and, for Dask, ``address``.

    Yields
    ------
    None

    Raises
    ------
    StratifyInputError
        If the Dask scheduler cannot be reached.
    """
    if execution.backend == "local":
        yield
        return
    from dask.distributed import Client, LocalCluster

    with ExitStack() as stack:
        try:
            if execution.address is not None:
                client = Client(execution.address, timeout=CONNECT_TIMEOUT)
            else:
                workers = (os.cpu_count() or 1) if execution.n_jobs == -1 else execution.n_jobs
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                stack.callback(cluster.close)
                client = Client(cluster)
        except (OSError, TimeoutError) as exc:
            where = execution.address or "a LocalCluster"
            raise StratifyInputError(
                f"execution.address: cannot reach the Dask scheduler at {where}: {exc}"
            ) from None
        stack.callback(client.close)
        stack.enter_context(parallel_config(backend="dask"))
        yield


__all__ = ["backend"]
