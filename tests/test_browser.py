"""The MLflow UI in a real browser, end to end.

A store is made by a real (but small) ``stratify run``; ``stratify ui`` serves it on loopback;
headless Chromium (Debian's ``chromium`` package, driven by Playwright through
``executable_path``: Playwright's own browser download is not used) opens the experiment and
checks what a user would look for: every run by name, a metric with its value on a run's page,
and a figure actually rendered from the artifact store.

The HTTP API behind the UI is checked in ``test_cli.py``; this file checks that the single-page
app renders it, which the API alone cannot show (a broken bundle, a wrong artifact root or a
route change would pass there and fail here).

It skips, saying why, only when no Chromium executable is installed (``.ci/run`` installs
Debian's ``chromium``) or Playwright is not importable (``make test`` installs it with the
``[test]`` extras). On a failure, a screenshot and the page's HTML are saved beside the test's
temporary files and their paths printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest

from kit import ROOT, SMALL

BROWSERS = ("chromium", "chromium-browser")  # Debian's package; Ubuntu's name for it
SERVER_START_S = 120  # MLflow starts in ~10 s idle, ~30-40 s on a loaded 2-core machine
UI_WAIT_MS = 60_000  # any wait on the single-page app (expect() would default to 5 s)
RUN_ARGS = (*SMALL, "explain.learner=t_learner")  # the flagship config, small (tests/kit.py)
PARENT_METRICS = ("hr_unadjusted", "n_events")  # the trial analysis, on the parent run
LEARNER_METRICS = ("c_index_harrell",)  # logged on every learner's run
IMAGE = "figures/benefit_calibration.png"  # logged on every learner's run
# Subprocesses: no progress bars in the captured output, no MLflow telemetry (no network here).
_ENV = os.environ | {"STRATIFY_PROGRESS": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}

# a real Chromium driving the MLflow UI: 85 s in all; CI runs it (`pytest -m slow`)
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Tracked:
    """What ``stratify run`` put in the store, read back with the MLflow client."""

    folder: Path
    experiment_id: str
    parent: object  # mlflow.entities.Run
    learners: list  # list[mlflow.entities.Run], nested under ``parent``


def _chromium() -> str:
    """Path of an installed Chromium, or skip the module's tests saying how to get one."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(
            "no Chromium executable on PATH (looked for: chromium, chromium-browser); "
            "install Debian's package: apt-get install chromium (.ci/run does this in CI)"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium under Playwright (``--no-sandbox``: CI runs as root)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed: `make test` installs it with the [test] extras",
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served(browser, tmp_path_factory) -> Iterator[tuple[Tracked, str]]:
    """``stratify run`` (through the console command, in a subprocess) and ``stratify ui``, on
    a free loopback port, started together on a new store; yields what the run stored, read
    back with the MLflow client, and the UI's base URL.

    The server takes 10-40 s to start, about as long as the small run takes: side by side,
    the wait is paid once. Both create the store if it is missing (the store's file lock
    orders them: ``test_tracking.py``). The UI is asked for nothing before the run has ended
    and ``GET /health`` answers; the server's whole process group is always stopped.
    Depends on ``browser`` only so that, without Chromium, the tests skip before this work.
    """
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("browser") / "mlruns"
    port = _free_port()
    log_path = tmp_path_factory.mktemp("ui") / "server.log"
    command = [sys.executable, "-m", "stratify.cli", "ui", "--store", str(folder)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_ENV,
            start_new_session=True,  # its own process group: stratify -> mlflow -> uvicorn
        )
    base = f"http://127.0.0.1:{port}"
    try:
        command = [sys.executable, "-m", "stratify.cli", "run", str(ROOT / "configs/mirocals.yaml")]
        command += [f"tracking.uri={folder}", *RUN_ARGS]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_ENV)
        assert proc.returncode == 0, f"stratify run failed:\n{proc.stderr[-3000:]}"
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        experiment_id = client.get_experiment_by_name("mirocals").experiment_id
        runs = client.search_runs([experiment_id])
        (parent,) = (r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        learners = sorted(
            (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
            key=lambda r: r.info.run_name,
        )
        assert len(learners) == 2, [r.info.run_name for r in runs]
        _wait_until_healthy(base, server, log_path)
        yield Tracked(folder, experiment_id, parent, learners), base
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def tracked(served) -> Tracked:
    """What ``stratify run`` put in the store."""
    return served[0]


@pytest.fixture(scope="module")
def ui(served) -> str:
    """The base URL of ``stratify ui`` over that store, answering."""
    return served[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_healthy(base: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        log = log_path.read_text(errors="replace")[-3000:]
        if server.poll() is not None:
            pytest.fail(f"`stratify ui` exited with status {server.returncode}:\n{log}")
        if time.monotonic() > deadline:
            pytest.fail(f"`stratify ui` did not answer {base}/health in {SERVER_START_S} s:\n{log}")
        time.sleep(0.25)  # polling a port, not waiting for the page


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


@pytest.fixture
def page(browser, ui) -> Iterator[object]:
    """A fresh browser page (its own context: no state carried between tests)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(UI_WAIT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@contextmanager
def _evidence_on_failure(page, tmp_path: Path) -> Iterator[None]:
    """On any failure inside, save a screenshot and the HTML of the page, and say where."""
    try:
        yield
    except BaseException:
        shot, html = tmp_path / "failure.png", tmp_path / "failure.html"
        try:
            page.screenshot(path=str(shot), full_page=True)
            html.write_text(page.content())
            print(f"browser state at failure: {shot} and {html} (url {page.url})")
        except Exception as exc:  # the evidence must not hide the failure itself
            print(f"could not save the browser state: {exc}")
        raise


def _route(base: str, path: str) -> str:
    """A UI address; ``workflowType=machine_learning`` shows runs (MLflow 3's default is GenAI)."""
    return f"{base}/#/{path}?workflowType=machine_learning"


def _shown(value: float) -> str:
    """A metric value as the UI prints it: JavaScript's ``String(number)``.

    The same shortest round-trip digits as Python's ``repr``, but integers have no ``.0`` and
    numbers from 1e-6 to 1e21 are written out in positional notation (Python switches to an
    exponent below 1e-4 and from 1e16), and exponents have no leading zero.

    >>> [_shown(x) for x in (90.0, 0.6691539700235353, 1e-05, 1.5e-07, 2.5e16)]
    ['90', '0.6691539700235353', '0.00001', '1.5e-7', '25000000000000000']
    """
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" not in text:
        return text
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(text), "f")
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent):+d}"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_experiment_page_lists_every_run(page, ui, tracked, tmp_path):
    """The runs table shows the parent run and, once it is expanded, each learner's nested run,
    each linking to its own run page.

    Names are ``<config>-<hash>`` and ``<config>-<learner>-<hash>``. Nested runs start collapsed
    under their parent: the expander in the parent's name cell shows them, as a user would.
    """
    from playwright.sync_api import expect

    digest = tracked.parent.data.tags["stratify.config_hash"][:7]
    assert tracked.parent.info.run_name == f"mirocals-{digest}"
    assert [r.info.run_name for r in tracked.learners] == [
        f"mirocals-{label}-{digest}" for label in ("cox_interaction", "t_learner")
    ]
    with _evidence_on_failure(page, tmp_path):
        page.goto(_route(ui, f"experiments/{tracked.experiment_id}/runs"))
        parent = page.get_by_role("link", name=tracked.parent.info.run_name, exact=True)
        expect(parent).to_be_visible(timeout=UI_WAIT_MS)
        expect(parent).to_have_attribute("href", _run_href(tracked, tracked.parent))
        page.get_by_role("gridcell").filter(has=parent).get_by_role("button").click()
        for run in tracked.learners:
            link = page.get_by_role("link", name=run.info.run_name, exact=True)
            expect(link).to_be_visible(timeout=UI_WAIT_MS)
            expect(link).to_have_attribute("href", _run_href(tracked, run))


def _run_href(tracked: Tracked, run) -> str:
    return f"#/experiments/{tracked.experiment_id}/runs/{run.info.run_id}"


def test_run_pages_show_metrics_with_their_values(page, ui, tracked, tmp_path):
    """The parent's run page and a learner's show metric names with the values logged.

    The metrics table is filtered with its own search box, so the row is found whatever the
    number of metrics or the table's scrolling. ``n_events`` (a count, logged as 90.0) checks
    that values are compared as the UI writes them.
    """
    from playwright.sync_api import expect

    checks = [(tracked.parent, PARENT_METRICS), (tracked.learners[0], LEARNER_METRICS)]
    with _evidence_on_failure(page, tmp_path):
        for run, keys in checks:
            page.goto(_route(ui, f"experiments/{tracked.experiment_id}/runs/{run.info.run_id}"))
            heading = page.get_by_role("heading", name=run.info.run_name, exact=True)
            expect(heading).to_be_visible(timeout=UI_WAIT_MS)
            for key in keys:
                page.get_by_placeholder("Search metrics").fill(key)
                row = page.get_by_role("row").filter(
                    has=page.get_by_role("link", name=key, exact=True)
                )
                expect(row).to_be_visible(timeout=UI_WAIT_MS)
                expect(row).to_contain_text(_shown(run.data.metrics[key]), timeout=UI_WAIT_MS)


def test_artifact_image_is_rendered(page, ui, tracked, tmp_path):
    """A learner's calibration figure, opened in the run's Artifacts tab, is drawn.

    The browser must have fetched and decoded the PNG from the artifact store: the ``<img>``
    finishes loading with the figure's own pixel size (a broken image has zero width).
    """
    learner = tracked.learners[0]
    stored = Path(urlparse(learner.info.artifact_uri).path) / IMAGE
    width, height = _png_size(stored)
    run_page = f"experiments/{tracked.experiment_id}/runs/{learner.info.run_id}"
    with _evidence_on_failure(page, tmp_path):
        page.goto(_route(ui, f"{run_page}/artifacts/{IMAGE}"))
        selector = f'img[alt="{IMAGE}"]'
        page.locator(selector).wait_for(state="visible")
        # Re-queried on every poll: the app may re-render the element while the PNG loads.
        page.wait_for_function(
            "sel => { const img = document.querySelector(sel);"
            " return img !== null && img.complete && img.naturalWidth > 0; }",
            arg=selector,
        )
        size = page.locator(selector).evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert tuple(size) == (width, height), f"drawn {size}, stored PNG is {width}x{height}"


def test_the_run_report_opens_offline_with_every_figure(browser, tracked, tmp_path):
    """The parent run's ``report.html``, opened from disk with the network cut off, draws every
    embedded figure and asks for nothing but itself.

    Offline the page can only show what it carries: an image that pointed anywhere else would
    stay broken (zero natural width), and any request beyond the file is recorded and fails
    the test.
    """
    report = Path(urlparse(tracked.parent.info.artifact_uri).path) / "report.html"
    embedded = report.read_text().count('<img src="data:image/png;base64,')
    assert embedded >= 10  # analysis, calibration, SHAP and modifier figures
    context = browser.new_context(offline=True)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    try:
        with _evidence_on_failure(page, tmp_path):
            page.goto(report.as_uri(), wait_until="load")
            drawn = page.evaluate(
                "() => Array.from(document.images).map(img => img.complete && img.naturalWidth > 0)"
            )
            assert len(drawn) == embedded and all(drawn), drawn
            assert page.title().startswith("mirocals")
    finally:
        context.close()
    assert [url for url in requests if not url.startswith("data:")] == [report.as_uri()]
