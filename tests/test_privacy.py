"""No patient-level data in a run unless the config says so: every param, tag, metric and text
artifact of a whole run (parent and learner runs, the report included) is searched for the
patients' own values.

The simulated MIROCALS covariates and times are floats with many digits (age 45.745940,
csf_pnfh 2058.299952, time 548.18469065), so a patient's value written anywhere, at full
precision or to 8 significant digits, is found as text; aggregates (means, quantile grids,
hazard ratios) do not reproduce them. The same search with ``tracking.log_patient_level: true``
must find them (the patient table is then logged): the check can fail.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from kit import ROOT, SMALL
from stratify.config import load_config
from stratify.pipeline.experiment import run

TEXT = (".csv", ".yaml", ".yml", ".json", ".html", ".txt", ".md")
DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def _patient_strings(result) -> set[str]:
    """Each patient's continuous values as they would be written: repr and 8 digits."""
    values = np.concatenate([result.data.X.to_numpy(float).ravel(), result.data.time])
    out = set()
    for v in values[np.isfinite(values)]:
        for text in (repr(float(v)), f"{v:.8g}", f"{v:.6f}"):
            if len(re.sub(r"\D", "", text)) >= 8:  # long enough not to occur by chance
                out.add(text)
    return out


def _everything_logged(client: MlflowClient, result, folder: Path) -> str:
    """Params, tags, metrics and text artifacts of the parent and learner runs, as one text."""
    parts = []
    for run_id in [result.run_id, *result.learner_run_ids.values()]:
        logged = client.get_run(run_id)
        parts += [f"{k}={v}" for k, v in logged.data.params.items()]
        parts += [f"{k}={v}" for k, v in logged.data.tags.items()]
        parts += [f"{k}={v!r}" for k, v in logged.data.metrics.items()]
        for path in _artifacts(client, run_id):
            if path.endswith(TEXT):
                local = Path(client.download_artifacts(run_id, path, str(folder)))
                parts.append(DATA_URI.sub("", local.read_text(encoding="utf-8")))
    return "\n".join(parts)


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, _empty_store_db):
    """``run()`` of the small flagship config (no models logged) for a value of
    ``tracking.log_patient_level``, made once per module into a store of its own:
    ``whole_run(patient_level)`` is its result. The runs only get read."""
    made = {}

    def get(patient_level: bool):
        if patient_level not in made:
            store = tmp_path_factory.mktemp(f"patient-level-{patient_level}") / "mlruns"
            store.mkdir()
            shutil.copy(_empty_store_db, store / _empty_store_db.name)
            overrides = [f"tracking.uri={store}", *SMALL, "tracking.log_models=false"]
            overrides.append(f"tracking.log_patient_level={patient_level}")
            made[patient_level] = run(load_config(ROOT / "configs" / "mirocals.yaml", overrides))
        return made[patient_level]

    return get


@pytest.mark.parametrize("patient_level", [False, True])
def test_a_whole_run_holds_no_patient_value_unless_allowed(whole_run, tmp_path, patient_level):
    result = whole_run(patient_level)
    client = MlflowClient(result.store.tracking_uri)
    text = _everything_logged(client, result, tmp_path)
    assert "report.html" in _artifacts(client, result.run_id)  # the report was searched too
    patients = _patient_strings(result)
    assert len(patients) > 3 * result.data.n_patients  # the search has material
    leaked = sorted(s for s in patients if s in text)
    if patient_level:
        assert len(leaked) > result.data.n_patients  # the patient table is there, and found
    else:
        assert leaked == [], leaked[:5]


def test_figures_embedded_in_the_report_are_images_only(whole_run, tmp_path):
    # the report's images are PNGs: nothing else hides in its data URIs (the report of the
    # run above that logs no patient-level data: every kind of figure, explanations included)
    result = whole_run(False)
    client = MlflowClient(result.store.tracking_uri)
    page = Path(client.download_artifacts(result.run_id, "report.html", str(tmp_path)))
    uris = DATA_URI.findall(page.read_text(encoding="utf-8"))
    assert uris
    for uri in uris:
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
