"""Where the work runs: joblib's own worker processes, or a Dask cluster.

All fan-out in stratify (cross-fitting tasks, learners to explain) goes through
joblib. :func:`backend` makes the config's choice joblib's backend for a block
of work: ``local`` leaves joblib's process pool (``execution.n_jobs``
workers); ``dask`` connects to the scheduler at ``execution.address`` or starts
a ``LocalCluster`` of ``n_jobs`` single-threaded worker processes, and joblib
sends its tasks there. Every task carries its own seed (a function of its
coordinates only), so results are identical, bit for bit, whatever the
backend and the number of workers.

A worker process that dies (killed, or out of memory) is handled by the
backend: joblib's local pool cannot replace it, so the block ends with a
:class:`WorkerLostError`; Dask restarts the worker and reruns its tasks on the
cluster (each task carries its own data, see :func:`_resilient_dask_backend`),
so the results are the same as without the fault, unless the same task keeps
killing workers (then :class:`WorkerLostError` too).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from functools import cache

from joblib import parallel_config

from stratify.config.schema import ExecutionConfig
from stratify.exceptions import StratifyInputError

CONNECT_TIMEOUT = "10s"
"""How long to wait for a Dask scheduler before giving up."""


class WorkerLostError(RuntimeError):
    """A worker process died (killed, out of memory) or the Dask cluster was lost mid-work.

    Not the user's input and not a bug: the CLI prints the message alone and exits 1.
    """


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
    WorkerLostError
        If a local worker process dies, a Dask task keeps killing its workers, or the
        connection to the Dask cluster is lost.
    """
    _quiet_resource_tracker()
    if execution.backend == "local":
        watched = parallel_config("loky", initializer=_exit_with_parent, initargs=(os.getpid(),))
        try:
            with watched:
                yield
        except BrokenProcessPool:  # loky's TerminatedWorkerError
            raise WorkerLostError(
                "a worker process died (killed, or out of memory) during the parallel work; "
                "rerun, with a lower execution.n_jobs if memory is short"
            ) from None
        return
    with _dask(execution):
        yield


def _quiet_resource_tracker() -> None:
    """Keep joblib's resource tracker from adding lines to a failed run's one-line error.

    When a worker is killed, the tracker (a process of its own, started with this
    process's environment) warns at shutdown about the semaphores it then cleans
    up; that warning is about the cleanup, not for the user.
    """
    rule = "ignore:resource_tracker:UserWarning"
    current = os.environ.get("PYTHONWARNINGS", "")
    if rule not in current.split(","):
        os.environ["PYTHONWARNINGS"] = f"{current},{rule}" if current else rule


def _exit_with_parent(parent: int) -> None:
    """Start a local worker that ends when ``parent`` (the run's process) does.

    joblib keeps idle workers for five minutes, to reuse them; a run killed outright
    (SIGKILL) would leave them behind that long. (Dask's workers watch their parent
    themselves.)
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="stratify-parent-watch", daemon=True).start()


@contextmanager
def _dask(execution: ExecutionConfig) -> Iterator[None]:
    """joblib on a Dask cluster, Dask's failures as one-line errors."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    where = execution.address or "the LocalCluster"
    with ExitStack() as stack:
        client = _client(execution, stack)
        stack.enter_context(parallel_config(backend=_resilient_dask_backend()(client=client)))
        try:
            yield
        except KilledWorker:
            raise WorkerLostError(
                "Dask workers kept dying on the same task (killed, or out of memory); "
                "rerun, with fewer or larger workers if memory is short"
            ) from None
        except (FutureCancelledError, CommClosedError) as exc:
            raise WorkerLostError(
                f"lost the Dask cluster at {where} during the parallel work "
                f"({type(exc).__name__}); rerun"
            ) from None


def _client(execution: ExecutionConfig, stack: ExitStack):
    """A Dask client of the scheduler at ``execution.address``, or of a new LocalCluster
    (closed with ``stack``) whose logs are kept off the terminal."""
    from dask.distributed import Client, LocalCluster

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
                # the scheduler's HTTP endpoint on a free port: two runs at once do not
                # contend for Dask's default 8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                # restarts and shutdown chatter of the cluster's own processes; what
                # matters reaches the run as an exception
                silence_logs=logging.CRITICAL,
            )
            stack.callback(cluster.close)
            client = Client(cluster)
            client.register_plugin(_quiet_exit())
    except (OSError, TimeoutError) as exc:
        where = execution.address or "a LocalCluster"
        raise StratifyInputError(
            f"execution.address: cannot reach the Dask scheduler at {where}: {exc}"
        ) from None
    except RuntimeError as exc:  # "Nanny failed to start": a worker died as it started
        raise WorkerLostError(
            f"a Dask worker process died while the LocalCluster was starting ({exc}); rerun"
        ) from None
    stack.callback(client.close)
    return client


def _quiet_exit():
    """A Dask worker plugin: a LocalCluster worker stopped mid-task (Ctrl-C) exits without
    a traceback on the terminal.

    joblib gives every task a client of the cluster; a worker stopped while a task runs
    finalizes that client after its event loop has closed, and Python prints the
    resulting ``RuntimeError: IOLoop is closed`` as an ignored exception.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietExit(WorkerPlugin):
        name = "stratify-quiet-exit"

        def setup(self, worker):
            sys.unraisablehook = _drop_closed_loop_errors

    return QuietExit()


def _drop_closed_loop_errors(unraisable) -> None:
    """``sys.unraisablehook`` of a worker: drop the closed-loop error, report the rest."""
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "IOLoop is closed"):
        sys.__unraisablehook__(unraisable)


@cache
def _resilient_dask_backend() -> type:
    """joblib's Dask backend, each task sent with its arguments instead of scattering them.

    joblib scatters large arguments (the trial, fold indices) to one worker and lets
    the others fetch them from it; when that worker dies, the only copy goes with it
    and every task that needs it is cancelled. Sent with the task, the arguments are
    part of the task the scheduler holds, so it reruns a lost task on another worker.
    (A class made on first use: importing joblib's Dask backend imports Dask.)
    """
    from joblib._dask import DaskDistributedBackend

    class ResilientDaskBackend(DaskDistributedBackend):
        def start_call(self):
            super().start_call()
            self.call_data_futures = None  # joblib scatters arguments only through this

        def stop_call(self):
            self.call_data_futures = {}
            super().stop_call()

    return ResilientDaskBackend


__all__ = ["WorkerLostError", "backend"]
