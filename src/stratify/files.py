"""Files written all or nothing: a temporary file beside the target, then a rename.

Readers never see a partial file; on any failure (a full disk, Ctrl-C) the
temporary file is removed and an existing file at the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from stratify.exceptions import StratifyInputError


def write_atomically(target: str | os.PathLike[str], write: Callable[[Path], None], *, what: str):
    """Write ``target`` through ``write(temporary_path)``, fsync, then rename.

    Parameters
    ----------
    target : str or path-like
        The file to write; missing folders are created.
    write : callable
        Writes the content to the path it is given (e.g. ``frame.to_csv``).
    what : str
        The start of an error message, e.g. ``"--csv: cannot write"``; the
        message goes on with the target and the reason.

    Returns
    -------
    pathlib.Path
        The target.

    Raises
    ------
    StratifyInputError
        If the folder cannot be created or written to, naming the target.
    """
    out = Path(target).expanduser()
    folder = out.parent
    if folder.exists() and not folder.is_dir():
        raise StratifyInputError(f"{what} {out}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # the target's suffix too: writers that infer compression from it (.csv.gz) still do
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=out.suffix)
    except OSError as exc:
        raise StratifyInputError(f"{what} {out}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise StratifyInputError(f"{what} {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; the partial file otherwise
    return out


__all__ = ["write_atomically"]
