"""The run report: one self-contained HTML file with every figure, the numbers as computed,
the config and provenance; user text escaped; written atomically."""

import base64
import dataclasses
import html
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from kit import ROOT, SMALL_RUN
from stratify import __version__
from stratify.config import load_config
from stratify.data import TrialData
from stratify.data.simulate import simulate_mirocals
from stratify.exceptions import StratifyInputError
from stratify.pipeline.experiment import analyse, dataset_hash, draw_figures
from stratify.report.html import build_report, write_report
from stratify.report.run import RunResult
from stratify.report.summary import finding

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
EMBEDDED = '<img src="data:image/png;base64,'
FAST = SMALL_RUN  # the small_run fixture's overrides (conftest.py)


def _config(tmp_path: Path, *overrides: str):
    return load_config(
        ROOT / "configs" / "mirocals.yaml", [f"tracking.uri={tmp_path / 'mlruns'}", *overrides]
    )


@pytest.fixture(scope="module")
def run(small_run):
    """What `run()` holds before it logs: a small real experiment on the flagship config."""
    config, data, analysis, figures = (
        small_run.config, small_run.data, small_run.analysis, small_run.figures,
    )  # fmt: skip
    evaluation, explained = small_run.evaluation, small_run.explained
    provenance = {
        "stratify.version": __version__,
        "stratify.config_hash": config.config_hash,
        "stratify.dataset_hash": dataset_hash(data),
        "mlflow.run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    drawn = draw_figures(config, evaluation, explained)
    produced = RunResult(config, data, analysis, figures, evaluation, explained, drawn)
    page = build_report(produced, provenance)
    return SimpleNamespace(
        config=config, data=data, analysis=analysis, figures=figures, evaluation=evaluation,
        explained=explained, drawn=drawn, produced=produced, provenance=provenance, html=page,
    )  # fmt: skip


class _Tags(HTMLParser):
    """Every start tag with its attributes, every table's row count, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.table_rows: list[int] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.table_rows.append(0)
        elif tag == "tr":
            self.table_rows[-1] += 1

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _images(page: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    ]


def _expected_figures(run) -> int:
    """The analysis figures and every figure the run drew: the report draws none."""
    return len(run.figures) + sum(len(group) for group in run.drawn.values())


def test_the_report_is_one_self_contained_document(run):
    page = run.html
    assert page.startswith("<!DOCTYPE html>")
    parsed = _parse(page)
    names = {tag for tag, _ in parsed.tags}
    assert {"html", "head", "style", "body", "table", "figure", "img", "pre"} <= names
    assert not names & {"script", "link", "iframe", "object", "embed", "base"}
    for tag, attrs in parsed.tags:
        if "src" in attrs:
            assert attrs["src"].startswith("data:image/png;base64,"), tag
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs["href"]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<script|@import|@font-face|url\(", page, re.IGNORECASE)


def test_every_figure_of_the_run_is_embedded_as_a_valid_png(run):
    images = _images(run.html)
    assert run.html.count(EMBEDDED) == len(images) == _expected_figures(run)
    assert len(images) == 10  # 4 analysis + modifier + 2 calibration + 2 SHAP + 1 time SHAP
    for png in images:
        assert png.startswith(PNG_HEADER)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
    assert len(run.html) < 2_000_000  # about 0.3 MB for this run


def test_the_key_numbers_appear_as_the_analysis_computed_them(run):
    page, a = run.html, run.analysis
    text = html.unescape(page)
    # the flagship trial's analysis, with the digits the terminal prints
    assert "0.82 (0.54–1.24)" in text  # hazard ratio, unadjusted
    assert "0.95 (0.62–1.45)" in text  # adjusted
    assert (a.hr_unadjusted.estimate, a.hr_adjusted.estimate) == (
        pytest.approx(0.82, abs=0.005),
        pytest.approx(0.95, abs=0.005),
    )
    assert "log-rank p = 0.34" in text and a.logrank_p == pytest.approx(0.34, abs=0.005)
    assert "χ² = 0.90" in text and a.logrank_chisq == pytest.approx(0.90, abs=0.005)
    assert "+8.8 (-42.5 to +60.1)" in text  # RMST difference, days
    assert "55.5% (45.7%–64.2%)" in text and "62.7% (53.0%–71.0%)" in text  # KM at 640 days
    assert f"{run.data.n_patients} patients" in text and f"{run.data.n_events} events" in text
    for stratum in a.strata:
        assert f"csf_pnfh {stratum.label}" in text
        assert stratum.note in text
    assert any(s.note for s in a.strata)  # the < 750 stratum: too few events
    p = run.evaluation.heterogeneity_p
    said = re.search(r"Heterogeneity: [^(]*\(p ([=<]) ([0-9.]+);", text)
    if p < 0.001:
        assert said.groups() == ("<", "0.001")
    else:
        assert said[1] == "=" and float(said[2]) == pytest.approx(p, rel=5e-3)  # 3 digits
    assert run.evaluation.heterogeneity_method in text
    for label, report in run.evaluation.learners.items():
        m = report.metrics
        c, sd = re.search(
            rf"<td>{label}</td><td class=\"num\">([0-9.]+) ± ([0-9.]+)<", page
        ).groups()
        assert float(c) == pytest.approx(m["c_index_harrell"], abs=5e-4)
        assert float(sd) == pytest.approx(m["c_index_harrell_sd"], abs=5e-4)
        mean = re.search(rf"<tr><td>{label}[^<]*</td><td>([+-][0-9.]+)</td>", page)[1]
        assert float(mean) == pytest.approx(m["cate_rmst_mean"], abs=0.05)
        assert f"{label}: benefit by group (days)" in text


def test_the_heterogeneity_verdict_and_the_modifier_finding_are_stated(run):
    text = html.unescape(run.html)
    effect = run.explained.modifier
    assert finding(run.explained) in text
    assert "<strong>" + html.escape(finding(run.explained)) + "</strong>" in run.html
    verdict = "no evidence at the 5% level" if run.evaluation.heterogeneity_p >= 0.05 else "beyond"
    assert verdict in text
    assert f"Effect modifier: {effect.modifier}" in text
    assert "Crossover supported by the data" in text
    for side in effect.sides:
        assert f"{effect.modifier} {side.label}" in text


def test_the_config_and_the_provenance_are_included(run):
    page = run.html
    assert html.escape(run.config.to_yaml()) in page
    text = html.unescape(page)
    for key, value in run.provenance.items():
        assert key in text and value in text
    assert "Config hash" in text and "MLflow run" in text
    assert "No patient-level data were logged" in text


def test_tables_hold_aggregates_not_patients(run):
    rows = _parse(run.html).table_rows
    assert rows and max(rows) < 30 < run.data.n_patients


def test_user_text_is_escaped(run, tmp_path):
    evil = "<script>alert('x')</script>"
    frame = simulate_mirocals(220, seed=3).rename(columns={"csf_pnfh": evil})
    frame["arm"] = frame["arm"].map({0: "placebo", 1: "<b>IL-2</b>"})
    data = TrialData.from_frame(
        frame, treated="<b>IL-2</b>", covariates=["age", "svc", evil], modifier=evil
    )
    config = _config(tmp_path, "learners=[]", f'tracking.experiment="{evil}"')
    config = config.model_copy(update={"name": evil})  # the schema refuses it; escape anyway
    analysis, figures = analyse(config, data)
    page = build_report(RunResult(config, data, analysis, figures), provenance={evil: evil})
    assert "<script" not in page.lower() and "<b>" not in page
    assert html.escape(evil) in page and html.escape("<b>IL-2</b>") in page
    assert {tag for tag, _ in _parse(page).tags}.isdisjoint({"script", "b"})


def test_without_learners_the_sections_say_why(run, tmp_path):
    config = _config(tmp_path, "learners=[]")
    page = build_report(RunResult(config, run.data, run.analysis, run.figures))
    text = html.unescape(page)
    assert "No learners were configured" in text
    assert "nothing to explain" in text
    assert page.count(EMBEDDED) == len(run.figures)
    assert "No provenance was supplied" in text


def test_without_explanations_the_section_says_why(run, tmp_path):
    config = _config(tmp_path, *FAST, "explain.enabled=false")
    drawn = draw_figures(config, run.evaluation, None)
    page = build_report(
        RunResult(config, run.data, run.analysis, run.figures, run.evaluation, None, drawn)
    )
    text = html.unescape(page)
    assert "explanations were switched off (explain.enabled: false)" in text
    assert "Calibration for benefit" in text and "<h3>Effect modifier" not in page
    assert page.count(EMBEDDED) == len(run.figures) + len(run.evaluation.learners)


def test_the_report_draws_no_figure(run, monkeypatch):
    """It embeds the figures the run drew; a figure the run did not draw is not redrawn."""

    def no_drawing(*args, **kwargs):
        raise AssertionError("the report drew a figure")

    for name in ("learner_figures", "modifier_figures"):
        monkeypatch.setattr(f"stratify.report.figures.explain.{name}", no_drawing)
    monkeypatch.setattr("stratify.report.figures.benefit.benefit_calibration_plot", no_drawing)
    page = build_report(dataclasses.replace(run.produced, drawn={}))
    assert page.count(EMBEDDED) == len(run.figures)
    text = html.unescape(page)
    for label in run.evaluation.learners:
        assert f"{label}: benefit by group (days)" in text  # the tables stay
    assert build_report(run.produced, run.provenance) == run.html


def test_a_headline_replaces_the_lead_sentence(run):
    page = build_report(
        RunResult(run.config, run.data, run.analysis, run.figures), headline="csf_pnfh <matters>."
    )
    assert '<p class="lead">csf_pnfh &lt;matters&gt;.</p>' in page


@pytest.mark.parametrize("dpi", [0, 72.5, True, 10_000])
def test_a_bad_dpi_is_refused(run, dpi):
    with pytest.raises(StratifyInputError, match="dpi"):
        build_report(RunResult(run.config, run.data, run.analysis), dpi=dpi)


# ------------------------------------------------------------------ write_report


def test_write_report_writes_the_document_and_creates_folders(tmp_path):
    target = tmp_path / "reports" / "nested" / "report.html"
    assert write_report("<p>é – ≥</p>", target) == target
    assert target.read_text(encoding="utf-8") == "<p>é – ≥</p>"
    assert os.listdir(target.parent) == ["report.html"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_no_file_and_keeps_an_old_report(tmp_path, monkeypatch, failing):
    fresh, old = tmp_path / "fresh.html", tmp_path / "old.html"
    old.write_text("previous report", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(f"stratify.files.os.{failing}", boom)
    for target in (fresh, old):
        with pytest.raises(StratifyInputError, match=re.escape(str(target))):
            write_report("<p>" + "x" * 100_000 + "</p>", target)
    assert sorted(os.listdir(tmp_path)) == ["old.html"]
    assert old.read_text(encoding="utf-8") == "previous report"


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("stratify.files.os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report("<p>report</p>", tmp_path / "report.html")
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_is_named(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file", encoding="utf-8")
    target = blocker / "report.html"
    with pytest.raises(
        StratifyInputError, match=f"cannot write the report to {re.escape(str(target))}"
    ):
        write_report("<p>report</p>", target)
    with pytest.raises(StratifyInputError, match=re.escape(str(blocker / "sub"))):
        write_report("<p>report</p>", blocker / "sub" / "report.html")


def test_the_privacy_note_says_when_models_were_logged(run):
    # models hold values derived from individual patients: the note must not say "nothing"
    # (the module's run logs its models, as the flagship config does: its page is the one)
    assert run.config.tracking.log_models
    tracking = run.config.tracking.model_copy(update={"log_models": False})
    config = run.config.model_copy(update={"tracking": tracking})
    without = build_report(dataclasses.replace(run.produced, config=config))
    assert "tracking.log_models: true" in run.html.split("Provenance")[-1]
    assert "tracking.log_models" not in without.split("Provenance")[-1]
