"""A comparison of tracked runs shown: a terminal table fitted to the width, JSON or CSV.

The table (rich) shows each metric as ``mean ± spread`` with the best value of
each column marked, and drops the metrics that do not fit the terminal's width
(named in the caption). JSON and CSV hold every column exactly as MLflow
stores it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stratify.files import write_atomically
from stratify.formatting import SMALLEST_P, p_value
from stratify.tracking.queries import FINISHED, SPREADS, Comparison, metric_columns


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (NaN and missing values as None), in the frame's order."""
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def to_json(frame: pd.DataFrame) -> str:
    """The comparison as a JSON list of objects (every float exact; NaN as null)."""
    return json.dumps(to_records(frame), indent=2, allow_nan=False)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the comparison as CSV, atomically (never a partial file).

    Raises
    ------
    StratifyInputError
        The file cannot be written.
    """
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False), what="--csv: cannot write")


def rich_table(
    frame: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    title: str | None = None,
    caption: str | None = None,
    width: int | None = None,
) -> Table:
    """The comparison as a rich table: one row per run, ``mean ± spread`` cells.

    Parameters
    ----------
    frame : pandas.DataFrame
        A comparison frame (see :func:`compare_runs`).
    metrics : sequence of str, optional
        Metric columns to show; default: every column that is neither an
        identity column nor the ``_sd``/``_se`` companion of another column.
    title, caption : str, optional
        Printed above and below the table. When all rows belong to one
        ``stratify run``, its name ends the title instead of filling a column.
    width : int, optional
        Terminal width to fit when the table is wider: metric names break after
        underscores and ``mean ±spread`` over two lines, but never inside a
        number or a name part, even if the table then stays wider than ``width``.
        Default: every cell on one line.

    Returns
    -------
    rich.table.Table
    """
    metrics = list(metrics) if metrics is not None else metric_columns(frame)
    columns, full_title = _columns(frame, metrics, title, compact=False)
    widths = [c.most for c in columns]
    if width is not None and _table_width(widths) > width:
        columns, full_title = _columns(frame, metrics, title, compact=True)
        widths = _fit(columns, width) or [c.least for c in columns]
    return _render(columns, widths, full_title, caption)


def print_table(comparison: Comparison, file: IO[str] | None = None) -> None:
    """Print a comparison as a table.

    On a pipe or a file: plain text, no ANSI codes, one line per run, however wide.
    On a terminal: styled; if too wide, metric names break after underscores and
    ``mean ±spread`` over two lines; if still too wide, the last metrics are left
    out (never the sort column) and the caption names them.
    """
    console = Console(file=file or sys.stdout, highlight=False)
    title = f"{comparison.source}: {len(comparison.frame)} runs"
    if not console.is_terminal:
        table = rich_table(
            comparison.frame, comparison.metrics, title=title, caption=comparison.caption
        )
        console.width = max(console.width, _table_width([c.width for c in table.columns]))
    else:
        shown = _metrics_that_fit(comparison, console.width)
        hidden = [m for m in comparison.metrics if m not in shown]
        caption = comparison.caption_for(shown)
        if hidden:
            caption += f"; not shown (terminal too narrow): {', '.join(hidden)}"
        table = rich_table(
            comparison.frame, shown, title=title, caption=caption, width=console.width
        )
    console.print(table)


def _metrics_that_fit(comparison: Comparison, width: int) -> list[str]:
    """The metrics, less the last ones (never the sort column) until the table fits."""
    shown = list(comparison.metrics)
    while True:
        columns, _ = _columns(comparison.frame, shown, None, compact=True)
        droppable = [m for m in shown if m != comparison.sort_by]
        if not droppable or _fit(columns, width) is not None:
            return shown
        shown.remove(droppable[-1])


@dataclass(frozen=True)
class _Column:
    """A table column: header and cell texts, and whether the cells may wrap."""

    header: str
    cells: list[str]
    wrap: bool
    justify: str = "right"

    def _texts(self) -> list[str]:
        return [line for text in (self.header, *self.cells) for line in text.split("\n")]

    @property
    def most(self) -> int:
        """Width with every line whole."""
        return max(map(cell_len, self._texts()))

    @property
    def least(self) -> int:
        """Narrowest width that breaks no word (no number, no name part)."""
        if not self.wrap:
            return self.most
        return max(cell_len(word) for text in self._texts() for word in text.split())


def _columns(frame, metrics, title, *, compact: bool) -> tuple[list[_Column], str | None]:
    """Identity and metric columns of a table, and its title (naming the one config run)."""
    config_runs = _config_runs(frame)
    learners = [_learner_cell(r.learner, r.label) for r in frame.itertuples(index=False)]
    columns = [
        _Column("run", [run_id[:8] for run_id in frame["run_id"]], False, "left"),
        _Column("learner", learners, False, "left"),
    ]
    if len(set(config_runs)) > 1:
        columns.append(_Column("config run", config_runs, False, "left"))
    elif title and config_runs:
        title = f"{title} of {config_runs[0]}"
    if (frame["status"] != FINISHED).any():
        columns.append(_Column("status", list(frame["status"]), False, "left"))
    for m in metrics:
        cells = _cells(frame, m, joint=" ±" if compact else " ± ")
        width = max(map(cell_len, cells), default=0) if compact else None
        columns.append(_Column(_header(m, _spread_of(frame, m), width), cells, compact))
    return columns, title


def _fit(columns: list[_Column], width: int) -> list[int] | None:
    """Column widths within ``width``: the widest-saving columns narrowed to their least
    width first; None if even the least widths do not fit."""
    widths = [c.most for c in columns]
    order = sorted(range(len(columns)), key=lambda i: columns[i].least - columns[i].most)
    for i in order:
        if _table_width(widths) <= width:
            break
        widths[i] = columns[i].least
    return widths if _table_width(widths) <= width else None


def _table_width(widths: list[int]) -> int:
    """Printed width of a table with these column widths: one space of padding on either
    side of a cell, and one character for each of the ``n + 1`` edges of a SIMPLE_HEAD box."""
    return sum(w + 2 for w in widths) + len(widths) + 1


def _render(columns: list[_Column], widths: list[int], title, caption) -> Table:
    """The rich table; every text as :class:`~rich.text.Text`, so a ``[`` in a run or
    experiment name is printed, never read as markup."""
    table = Table(
        title=None if title is None else Text(title, style="table.title"),
        caption=None if caption is None else Text(caption, style="table.caption"),
        box=box.SIMPLE_HEAD,
        caption_justify="left",
    )
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            Text(column.header), justify=column.justify, width=width, no_wrap=not column.wrap
        )
    for i in range(len(columns[0].cells)):
        table.add_row(*(Text(c.cells[i]) for c in columns))
    return table


def _config_runs(frame: pd.DataFrame) -> list[str]:
    """The stratify run each row belongs to, by name: the parent's for a learner run
    (``<config>-<label>-<hash7>`` → ``<config>-<hash7>``), its own for any other run."""
    out = []
    for row in frame.itertuples(index=False):
        name = row.run_name or ""
        if row.learner is not None and row.label and f"-{row.label}-" in name:
            head, _, tail = name.rpartition(f"-{row.label}-")
            name = f"{head}-{tail}"
        out.append(name)
    return out


def _header(metric: str, spread: str | None, width: int | None = None) -> str:
    """A metric's column header: its name (broken after underscores to fit ``width``),
    then ``± SD`` or ``± SE`` when a companion gives the spread."""
    lines = [metric]
    if width is not None:
        lines = [""]
        for part in re.findall(r"[^_]*_|[^_]+$", metric):
            if lines[-1] and len(lines[-1]) + len(part) > width:
                lines.append("")
            lines[-1] += part
    if spread is not None:
        lines.append(f"± {SPREADS[spread]}")
    return "\n".join(lines)


def _spread_of(frame: pd.DataFrame, metric: str) -> str | None:
    return next((s for s in SPREADS if f"{metric}{s}" in frame.columns), None)


def _cells(frame: pd.DataFrame, metric: str, joint: str = " ± ") -> list[str]:
    """``mean ± spread`` texts of one metric, with one number format for the column."""
    values = frame[metric].to_numpy(dtype=float)
    suffix = _spread_of(frame, metric)
    spreads = frame[f"{metric}{suffix}"].to_numpy(dtype=float) if suffix else None
    if re.search(r"(^|_)p(_[a-z]+)?$", metric):
        return [_p(v) for v in values]
    fmt = _number_format(values)
    out = []
    for i, v in enumerate(values):
        text = "–" if math.isnan(v) else format(v, fmt)
        if spreads is not None and not math.isnan(v) and not math.isnan(spreads[i]):
            text += f"{joint}{format(spreads[i], fmt)}"
        out.append(text)
    return out


def _number_format(values) -> str:
    """Decimals for a column from its typical size: 0.668, 10.5, 1234."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    if not finite:
        return ".3f"
    typical = sorted(finite)[len(finite) // 2]
    if 0 < typical < 0.01:
        return ".3g"
    return ".3f" if typical < 1 else ".1f" if typical < 100 else ".0f"


def _p(value: float) -> str:
    """A p-value cell: :func:`stratify.formatting.p_value` to 3 digits, the table's dash if none."""
    if math.isnan(value):
        return "–"
    return p_value(value, 3, smallest=SMALLEST_P)


def _learner_cell(learner: str | None, label: str | None) -> str:
    if learner is None:
        return "(parent run)"
    return label if label == learner or label is None else f"{label} ({learner})"


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return value
