"""The report as an HTML document: its CSS, escaping, tables, embedded figures, the page.

The building blocks every section of :mod:`stratify.report.sections` writes with. Every
piece of text that reaches the page goes through :func:`escape` (by :func:`table`,
:func:`paragraph` and :func:`figure`, or by the section itself); every figure is an
inline ``data:`` URI, and the CSS is inline, so the page loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from stratify import __version__, formatting
from stratify.exceptions import StratifyInputError
from stratify.formatting import SMALLEST_P, p_value
from stratify.rendering import DPI, figure_png, palette_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: CSS pixels per inch.
CSS_DPI = 96

CSS = """
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d0d0d0; --accent: #0072B2;
        --good: #e8f3ec; --note: #f6f1e4; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1060px; padding: 24px 28px 48px; color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       counter-reset: fig tab; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--accent); }
h3 { font-size: 17px; margin: 26px 0 8px; }
h4 { font-size: 15px; margin: 20px 0 6px; }
p { margin: 8px 0; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
.lead { font-size: 17px; font-weight: 600; margin: 12px 0; }
.findings { background: var(--good); border-left: 4px solid #009E73; padding: 10px 14px 10px 32px;
            margin: 12px 0; }
.findings li { margin: 4px 0; }
.verdict, .finding { background: var(--note); border-left: 4px solid #E69F00;
                     padding: 8px 12px; margin: 12px 0; }
.muted { color: var(--muted); font-size: 13px; }
nav { font-size: 14px; margin: 10px 0 0; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 13.5px;
        counter-increment: tab; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 4px; }
caption::before { content: "Table " counter(tab) ". "; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { border-bottom: 1.5px solid var(--ink); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.scroll { overflow-x: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 0 28px; }
.card { min-width: 0; }
.card table { font-size: 13px; }
.card th, .card td { padding: 3px 6px; }
figure { margin: 14px 0 22px; counter-increment: fig; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; max-width: 860px; }
figcaption::before { content: "Figure " counter(fig) ". "; font-weight: 600; color: var(--ink); }
pre { background: #f5f5f5; border: 1px solid var(--rule); padding: 10px 12px; font-size: 12.5px;
      overflow-x: auto; white-space: pre-wrap; }
code { font-size: 12.5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule);
         padding-top: 8px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  .grid { display: block; }
  table, .card table { font-size: 8pt; }
  th, td, .card th, .card td { padding: 2px 4px; }
  .scroll { overflow: visible; }
  h2 { break-before: page; }
  section:first-of-type > h2 { break-before: auto; }
  h2, h3, h4, caption { break-after: avoid; }
  figure, table, .verdict, .finding, .findings { break-inside: avoid; }
  pre { white-space: pre-wrap; }
}
"""


def escape(value: object) -> str:
    """Text for HTML: every user-supplied string goes through here."""
    return html.escape(str(value), quote=True)


def p_cell(p: float, alpha: float = 0.05, digits: int = 2) -> str:
    """A p-value as the report shows it (:func:`stratify.formatting.p_value`): ``digits``
    significant digits, one more when rounding would cross ``alpha``, "< 0.001" below that."""
    return p_value(p, digits, alpha=alpha, smallest=SMALLEST_P)


def p_phrase(p: float, alpha: float = 0.05, digits: int = 2) -> str:
    """ "p = 0.34" or "p < 0.001", for sentences: :func:`p_cell` after "p"."""
    return formatting.p_is(p, digits, alpha=alpha, smallest=SMALLEST_P)


def table(head: Sequence[str], rows: Sequence[Sequence], *, caption: str, numeric=()) -> str:
    """An HTML table; every cell is escaped, ``numeric`` columns are right-aligned."""

    def cell(tag: str, j: int, value) -> str:
        kind = ' class="num"' if j in numeric else ""
        return f"<{tag}{kind}>{escape(value)}</{tag}>"

    header = "".join(cell("th", j, h) for j, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", j, v) for j, v in enumerate(row)) + "</tr>" for row in rows
    )
    return (
        f'<div class="scroll"><table><caption>{escape(caption)}</caption>'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def grid(cards: Iterable[str]) -> str:
    """Blocks side by side on a wide screen, one below the other on paper."""
    return '<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in cards) + "</div>"


def paragraph(text: str, *, muted: bool = False) -> str:
    """One escaped paragraph."""
    return f'<p class="muted">{escape(text)}</p>' if muted else f"<p>{escape(text)}</p>"


def figure_data_uri(figure: Figure, dpi: int = DPI, *, compact: bool = True) -> str:
    """A figure as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure, rendered once by :func:`stratify.rendering.figure_png` (the
        run's artifact of the same figure shares the rendering).
    dpi : int
        Resolution.
    compact : bool
        Store the PNG with a 256-colour palette
        (:func:`stratify.rendering.palette_png`): about a third of the size, and
        no visible change for plots.

    Returns
    -------
    str
    """
    png = figure_png(figure, dpi)
    png = palette_png(png) if compact else png
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(fig: Figure, caption: str, dpi: int = DPI) -> str:
    """One embedded figure with its caption, shown at its natural size."""
    width = round(fig.get_figwidth() * CSS_DPI)
    return (
        f'<figure><img src="{figure_data_uri(fig, dpi)}" width="{width}" '
        f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def footer() -> str:
    """What made the page."""
    return (
        f"<footer>Made by stratify {escape(__version__)}. A self-contained file: no scripts and "
        f"nothing loaded from elsewhere; figures are embedded PNG images.</footer>"
    )


def document(title: str, body: str) -> str:
    """The whole page around ``body``, with the CSS inline."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


def check_dpi(dpi) -> int:
    """``dpi`` if it is an integer from 30 to 600, else a :class:`StratifyInputError`."""
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 30 <= dpi <= 600:
        raise StratifyInputError(f"dpi must be an integer from 30 to 600 (got {dpi!r})")
    return dpi


def check_figures(figures) -> None:
    """A :class:`StratifyInputError` unless ``figures`` maps paths to matplotlib figures."""
    from matplotlib.figure import Figure

    if not isinstance(figures, Mapping):
        raise StratifyInputError("figures must map artifact paths to matplotlib figures")
    for path, fig in figures.items():
        if not isinstance(fig, Figure):
            raise StratifyInputError(f"figures['{path}'] is not a matplotlib figure")


__all__ = [
    "CSS",
    "CSS_DPI",
    "check_dpi",
    "check_figures",
    "document",
    "escape",
    "figure",
    "figure_data_uri",
    "footer",
    "grid",
    "p_cell",
    "p_phrase",
    "paragraph",
    "table",
]
