"""Writing a report file: checked before any work, then written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from stratify.exceptions import StratifyInputError
from stratify.files import write_atomically


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a report can be written to ``path``.

    Parameters
    ----------
    path : str or path-like
        The report file to be written.

    Returns
    -------
    pathlib.Path
        The path, absolute; its folder exists afterwards.

    Raises
    ------
    StratifyInputError
        If ``path`` is a folder, or its folder cannot be created or written.
    """
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise StratifyInputError(f"cannot write the report to {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StratifyInputError(
            f"cannot write the report to {target}: {exc.strerror or exc}"
        ) from None
    if not os.access(target.parent, os.W_OK):
        raise StratifyInputError(f"cannot write the report to {target}: its folder is not writable")
    return target


def write_report(html_text: str, path: str | os.PathLike[str]) -> Path:
    """Write a report atomically: a temporary file in the same folder, then a rename.

    Readers never see a partial file, and a failure leaves no file behind (an
    existing report at ``path`` is kept unchanged). Missing folders are created.

    Parameters
    ----------
    html_text : str
        The document, e.g. from :func:`stratify.report.html.build_report`.
    path : str or path-like
        Where to write it.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StratifyInputError
        If the folder cannot be created or written to, naming ``path``.
    """
    return write_atomically(
        path,
        lambda tmp: tmp.write_text(html_text, encoding="utf-8", newline="\n"),
        what="cannot write the report to",
    )


__all__ = ["check_report_path", "write_report"]
