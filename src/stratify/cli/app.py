"""The ``stratify`` command: run, validate, simulate, ui, compare, study, server.

This module owns the top-level parser and how a command ends; each subcommand's
parser and handler are a module of :mod:`stratify.cli` (``run``, ``validate``,
...), which imports the heavy parts only when the command runs. Bad
input (a :class:`~stratify.exceptions.StratifyInputError`) is printed as one
line, ``error: ...``, with exit status 2 and no traceback. A failure of the
machine rather than of the input (a worker process that died, a store that
failed while recording: :class:`~stratify.pipeline.execution.WorkerLostError`,
:class:`~stratify.tracking.tracker.StoreError`) is one line too, with exit status 1.
Ctrl-C and SIGTERM print ``interrupted`` and exit 130. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys

from stratify import __version__
from stratify.cli import compare, run, server, simulate, study, ui, validate
from stratify.exceptions import StratifyInputError

EXIT_FAILURE = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stratify`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except StratifyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not _is_failure(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_failure(exc: Exception) -> bool:
    """Whether ``exc`` is a failure of the machine (a worker process that died, a store that
    failed while recording), told in one line, rather than a bug."""
    from stratify.pipeline.execution import WorkerLostError
    from stratify.tracking.tracker import StoreError

    return isinstance(exc, WorkerLostError | StoreError)


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler, ``timeout``, ``kill``) stops like Ctrl-C: open runs end KILLED."""
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratify",
        description="Who benefits? Treatment-effect heterogeneity in randomised survival trials.",
    )
    parser.add_argument("--version", action="version", version=f"stratify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in (run, validate, simulate, ui, compare, study, server):
        command.add_parser(sub)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
