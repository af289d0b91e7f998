"""Ctrl-C and SIGTERM held back while a run's status is written, then delivered.

An interrupt that lands inside a database transaction can leave SQLite locked
against closing the run, so the tracker writes statuses (and every store call)
with interrupts held (:func:`interrupts_held`); they take effect right after.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HeldInterrupts:
    """Ctrl-C and SIGTERM held back from now (main thread only) until :meth:`release`,
    which delivers them, so that writing a run's status is not cut short."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.caught: list[int] = []
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._hold) for s in self.SIGNALS}

    def _hold(self, signum, frame) -> None:
        self.caught.append(signum)

    def release(self) -> None:
        """Restore the handlers, then deliver what came meanwhile (e.g. KeyboardInterrupt)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self.previous = {}
        for signum in dict.fromkeys(self.caught):
            signal.raise_signal(signum)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM during the block; deliver them when it ends."""
    held = HeldInterrupts()
    try:
        yield
    finally:
        held.release()
