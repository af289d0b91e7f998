"""The resolved config, the run's provenance and what the report holds about patients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from stratify.report.document import escape, paragraph, table

if TYPE_CHECKING:
    from stratify.config import ExperimentConfig

#: Readable names of the provenance tags :func:`stratify.pipeline.experiment.run` sets.
PROVENANCE_LABELS = {
    "stratify.version": "stratify version",
    "stratify.git_commit": "Git commit of stratify",
    "stratify.config_hash": "Config hash",
    "stratify.dataset_hash": "Dataset hash",
    "stratify.data_source": "Data source",
    "stratify.heterogeneity_method": "Heterogeneity verdict",
    "mlflow.run_id": "MLflow run",
    "mlflow.experiment": "MLflow experiment",
    "tracking_uri": "Tracking store",
    "created": "Report created",
}


def config_and_provenance(config: ExperimentConfig, provenance: Mapping[str, str] | None) -> str:
    """The resolved config as YAML, the provenance rows and what the report holds."""
    out = "<h3>Config</h3>" + paragraph(
        "The resolved config of the run (relative paths are relative to the project root)."
    )
    out += f"<pre>{escape(config.to_yaml())}</pre><h3>Provenance</h3>"
    rows = [
        [PROVENANCE_LABELS.get(key, key), key, value] for key, value in (provenance or {}).items()
    ]
    if rows:
        out += table(["Item", "Key", "Value"], rows, caption="Provenance of this run")
    else:
        out += paragraph("No provenance was supplied with this report.")
    return out + paragraph(_privacy_note(config), muted=True)


def _privacy_note(config: ExperimentConfig) -> str:
    logged = config.tracking.log_patient_level
    where = (
        "Patient-level tables were logged to the run (tracking.log_patient_level: true) but "
        "are not part of this report"
        if logged
        else "No patient-level data were logged (tracking.log_patient_level: false)"
    )
    text = (
        f"{where}: every table here is an aggregate. Some figures draw one mark per patient "
        f"(censoring ticks on the Kaplan\u2013Meier curves, SHAP points), as the run's "
        f"logged figures do."
    )
    if config.tracking.log_models:
        text += (
            " The learners were logged as models (tracking.log_models: true): a fitted "
            "model holds values derived from individual patients (the trial's event "
            "times, a forest's split points and leaf curves, a Cox model's baseline "
            "hazard), though no patient rows."
        )
    return text


__all__ = ["PROVENANCE_LABELS", "config_and_provenance"]
