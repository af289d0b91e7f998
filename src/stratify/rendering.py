"""PNG images of figures, each rendered once per resolution.

A run logs every figure as an artifact and embeds the same figure in its report;
rendering a figure (layout, rasterising, PNG encoding) is the costliest part of
logging, so both take the bytes from :func:`figure_png`, which renders a figure
at a resolution the first time it is asked and returns the same bytes after.
Figures are finished when they are drawn: stratify never changes a figure after
it has been rendered (a changed figure would keep its first image).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from weakref import WeakKeyDictionary

from joblib import Parallel, delayed
from matplotlib.figure import Figure
from PIL import Image

#: Resolution of the logged and embedded figures (dots per inch); the report
#: displays them at their natural size (96 CSS pixels per inch), so they stay
#: sharp on screen and on paper.
DPI = 110

_RENDERED: WeakKeyDictionary[Figure, dict[int, bytes]] = WeakKeyDictionary()


def figure_png(figure: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, ``figure.savefig(format="png", dpi=dpi)``, rendered once.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        A finished figure.
    dpi : int
        Resolution.

    Returns
    -------
    bytes
        The same object for every call with the same figure and resolution.
    """
    images = _RENDERED.setdefault(figure, {})
    if dpi not in images:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        images[dpi] = buffer.getvalue()
    return images[dpi]


def render_all(figures: Iterable[Figure], dpi: int = DPI, *, n_jobs: int = 1) -> None:
    """Render the figures not rendered yet, on ``n_jobs`` joblib workers, for :func:`figure_png`.

    A run's figures are independent and each takes a quarter of a second to lay
    out and rasterise; a figure travels to a worker and back as a pickle in a
    tenth of that. The bytes are those :func:`figure_png` gives in this process.

    Parameters
    ----------
    figures : iterable of matplotlib.figure.Figure
        Finished figures (repeats are rendered once).
    dpi : int
        Resolution.
    n_jobs : int
        Workers of the active joblib backend; 1 renders here.
    """
    todo = list({id(f): f for f in figures if dpi not in _RENDERED.get(f, {})}.values())
    if n_jobs == 1 or len(todo) < 2:
        for figure in todo:
            figure_png(figure, dpi)
        return
    images = Parallel(n_jobs=n_jobs)(delayed(figure_png)(f, dpi) for f in todo)
    for figure, png in zip(todo, images, strict=True):
        _RENDERED.setdefault(figure, {})[dpi] = png


def palette_png(png: bytes) -> bytes:
    """The same image as a 256-colour palette PNG, transparency flattened onto white.

    About a third of the size, with no visible change for plots.
    """
    with Image.open(io.BytesIO(png)) as image:
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    out = io.BytesIO()
    palette = flat.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


__all__ = ["DPI", "figure_png", "palette_png", "render_all"]
