"""Progress bars for long work: shown in a terminal, silent in CI and logs.

A bar is drawn (on stderr, with rich, and erased when done) only in the main
process (never in a joblib worker, whose bars would interleave), when stderr is
a terminal, the ``CI`` environment variable is not set and ``STRATIFY_PROGRESS``
is not ``0``. Everywhere else :func:`track` yields the items untouched, so that
logs and captured output stay clean.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def enabled() -> bool:
    """Whether progress bars are drawn in this process."""
    if os.environ.get("STRATIFY_PROGRESS", "").strip() == "0" or os.environ.get("CI"):
        return False
    if multiprocessing.parent_process() is not None:  # a worker process
        return False
    return sys.stderr.isatty()


def track(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    """Yield ``items``, advancing a progress bar by one per item.

    Parameters
    ----------
    items : iterable
        The work, consumed lazily (e.g. a joblib generator of results).
    description : str
        What is being done, e.g. "cross-fitting".
    total : int
        How many items to expect.

    Yields
    ------
    object
        The items, unchanged.
    """
    if not enabled():
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


__all__ = ["enabled", "track"]
