"""Which process runs a run: the tags that let a later process close the runs of a dead one.

A process killed outright (SIGKILL, the out-of-memory killer, a power cut)
cannot close its runs. Each run is tagged with the process that runs it
(:func:`process_tags`: ``stratify.host``, ``stratify.pid``,
``stratify.process_start``), and :func:`process_ended` tells from those tags,
through Linux's ``/proc``, whether that process has certainly ended; a pid alone
may since belong to another process. :func:`running_runs` finds this host's
RUNNING runs in a store.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from mlflow import MlflowClient

#: Tag naming the host whose process runs a run.
HOST_TAG = "stratify.host"
#: Tag naming the process id that runs a run.
PID_TAG = "stratify.pid"
START_TAG = "stratify.process_start"
"""``boot=<boot id>;pidns=<pid namespace>;ticks=<start time>`` of the process (Linux's
``/proc``; empty elsewhere): a pid alone may since belong to another process."""

_PROC = Path("/proc")


def process_tags() -> dict[str, str]:
    """The tags naming this process on its runs, which :meth:`Tracker.close_orphans` reads.

    Returns
    -------
    dict of str to str
        ``stratify.host``, ``stratify.pid`` and ``stratify.process_start``. A run
        reopened by another process (a resumed study) should be tagged with them again.
    """
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), START_TAG: process_start(pid)}


def orphan_error(process: str) -> str:
    """The ``error`` tag of a run whose process ended without closing it."""
    return f"the process that ran it ({process}) ended without closing it"


def process_start(pid: int) -> str:
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


def process_ended(tags: Mapping[str, str]) -> bool:
    """Whether the process a run's tags name has certainly ended (False when unsure)."""
    try:
        pid = int(tags.get(PID_TAG, ""))
    except ValueError:
        return False  # not made by stratify, or by a version that did not tag runs
    recorded = _fields(tags.get(START_TAG, ""))
    here = _fields(process_start(os.getpid()))
    if recorded and here:
        if recorded.get("boot") != here["boot"]:
            return True  # this host restarted since: every process of then has ended
        if recorded.get("pidns") != here["pidns"]:
            return False  # another container of the same host name: its processes are unseen
        return _fields(process_start(pid)).get("ticks") != recorded.get("ticks")
    if sys.platform == "win32":  # os.kill would end the process, not probe it
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def pages(search: Callable) -> Iterator:
    """Every item of a paged MLflow search: ``search(page_token)`` -> PagedList."""
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return


def running_runs(client: MlflowClient) -> Iterator:
    """RUNNING runs of this host, in every active experiment of the store."""
    experiments = [
        e.experiment_id for e in pages(lambda token: client.search_experiments(page_token=token))
    ]
    if not experiments:
        return iter(())
    running = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{socket.gethostname()}'"
    return pages(
        lambda token: client.search_runs(experiments, filter_string=running, page_token=token)
    )
