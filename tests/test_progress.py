"""Progress bars: drawn in a terminal, silent in CI, in logs and in worker processes."""

from __future__ import annotations

import io

import pytest
from joblib import Parallel, delayed

from stratify import progress


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _terminal(monkeypatch) -> _Terminal:
    """Make stderr a terminal, outside CI. Called in the test body: pytest swaps in its own
    capturing stderr between fixture setup and the call."""
    stream = _Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("STRATIFY_PROGRESS", raising=False)
    return stream


def test_a_terminal_gets_a_bar_and_the_items_pass_through(monkeypatch):
    terminal = _terminal(monkeypatch)
    assert progress.enabled()
    assert list(progress.track(iter(range(3)), "cross-fitting", 3)) == [0, 1, 2]
    drawn = terminal.getvalue()
    assert "cross-fitting" in drawn and "3/3" in drawn


@pytest.mark.parametrize(("variable", "value"), [("CI", "true"), ("STRATIFY_PROGRESS", "0")])
def test_ci_and_the_opt_out_silence_the_bar(monkeypatch, variable, value):
    terminal = _terminal(monkeypatch)
    monkeypatch.setenv(variable, value)
    assert not progress.enabled()
    assert list(progress.track(range(3), "cross-fitting", 3)) == [0, 1, 2]
    assert terminal.getvalue() == ""


def test_no_terminal_no_bar(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    assert not progress.enabled()  # pytest captures stderr: not a terminal
    assert list(progress.track(range(2), "x", 2)) == [0, 1]
    assert capsys.readouterr().err == ""


def _worker_enabled() -> bool:
    import sys

    sys.stderr = _Terminal()
    return progress.enabled()


def test_worker_processes_never_draw():
    assert Parallel(n_jobs=2)(delayed(_worker_enabled)() for _ in range(2)) == [False, False]
