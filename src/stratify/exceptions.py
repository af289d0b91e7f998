"""The one exception type users see: bad input, named and explained.

Every check of user input (config files, trial data, CLI arguments) raises
:class:`StratifyInputError` with a message that names the field or column and
what is wrong with it. The CLI prints the message alone and exits with status 2;
anything else escaping is a bug and keeps its traceback. The helpers below keep
those messages on one printable line, whatever the config or the table holds
(used by the config loader and the data checks alike; no imports, so that
loading a config stays light).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

#: Longest value or name quoted in a message, in characters.
WIDTH = 60
#: Longest message, in characters (the rest is cut).
MAX_MESSAGE = 1000

_P = ParamSpec("_P")
_R = TypeVar("_R")


class StratifyInputError(ValueError):
    """Bad user input: a config field, a data column or an argument.

    The message is meant for the user as-is: it names the offending field or
    column and says what is wrong, in one line.
    """


def cut(text: str, width: int = WIDTH) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis if it was longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def show(value: object) -> str:
    """``repr`` of a value from the user's input, cut if long."""
    try:
        return cut(repr(value))
    except ValueError:  # an int too long to print (over 4,300 digits)
        return f"<{type(value).__name__} too large to show>"


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\n``), cut if long.

    Examples
    --------
    >>> one_line("column 'a\\nb' not found")
    "column 'a\\\\nb' not found"
    """
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
        )
    return cut(text, MAX_MESSAGE)


def one_line_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate an entry point so that its :class:`StratifyInputError` is one printable line."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except StratifyInputError as exc:
            message = one_line(str(exc))
            if message == str(exc):
                raise
            raise StratifyInputError(message) from None

    return wrapper
