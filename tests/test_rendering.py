"""Figures rendered once: the run's artifacts and its report share one PNG per figure."""

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from stratify.rendering import DPI, figure_png, palette_png, render_all


def _figure(width=4.0, height=3.0):
    figure = Figure(figsize=(width, height))
    figure.add_subplot().plot([0, 1, 2], [1, 0, 2])
    return figure


def test_rendered_once_per_resolution(monkeypatch):
    figure = _figure()
    calls = []
    savefig = figure.savefig
    monkeypatch.setattr(figure, "savefig", lambda *a, **k: calls.append(k) or savefig(*a, **k))
    first = figure_png(figure)
    assert figure_png(figure) is first
    assert calls == [{"format": "png", "dpi": DPI}]
    figure_png(figure, 50)
    assert len(calls) == 2


def test_png_has_the_figure_size_at_the_resolution():
    with Image.open(io.BytesIO(figure_png(_figure(4.0, 3.0), 50))) as image:
        assert image.size == (200, 150)
        assert image.format == "PNG"


def test_other_figures_render_apart():
    assert figure_png(_figure(4.0, 3.0)) != figure_png(_figure(5.0, 3.0))


def test_palette_keeps_pixels_of_an_opaque_plot():
    png = figure_png(_figure())
    small = palette_png(png)
    with Image.open(io.BytesIO(png)) as a, Image.open(io.BytesIO(small)) as b:
        assert b.mode == "P"
        assert a.size == b.size
        rgb_a = np.asarray(a.convert("RGB"), dtype=int)
        rgb_b = np.asarray(b.convert("RGB"), dtype=int)
        # a line plot needs few colours: the palette is off by 1-2 levels in 255 on average
        # (FASTOCTREE's colour buckets), and by at most 16 on anti-aliased edges
        error = np.abs(rgb_a - rgb_b)
        assert error.mean() <= 2.0
        assert error.max() <= 16
    assert len(small) < len(png)


def test_rendering_on_workers_gives_the_same_bytes(monkeypatch):
    figures = [_figure(4.0, 3.0), _figure(5.0, 2.0), _figure(3.0, 3.0)]
    here = [figure_png(f) for f in (_figure(4.0, 3.0), _figure(5.0, 2.0), _figure(3.0, 3.0))]

    def not_here(*args, **kwargs):
        raise AssertionError("rendered in the main process")

    with monkeypatch.context() as patch:
        patch.setattr(Figure, "savefig", not_here)  # the workers import their own Figure
        render_all([*figures, figures[0]], n_jobs=2)  # a repeat is rendered once
        assert [figure_png(f) for f in figures] == here  # from the cache
    already = figure_png(figures[1])
    render_all(figures, n_jobs=2)  # nothing left to render
    assert figure_png(figures[1]) is already
