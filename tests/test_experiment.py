"""`run(config)` end to end, in-process, into a private store: every shipped config, every
contract metric, honest status, no patient-level data unless the config allows it."""

import json
import math
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from kit import ROOT, SMALL
from stratify.config import load_config
from stratify.data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.pipeline.experiment import dataset_hash, learn, load_trial, run
from stratify.pipeline.explanation import explain_learners
from stratify.report.summary import finding, ordinal

CONTRACT_METRICS = {
    "n_patients", "n_events", "logrank_p",
    "hr_unadjusted", "hr_unadjusted_ci_low", "hr_unadjusted_ci_high", "hr_unadjusted_p",
    "hr_adjusted", "hr_adjusted_ci_low", "hr_adjusted_ci_high", "hr_adjusted_p",
    "interaction_hr_per_unit", "interaction_p", "km_surv_control", "km_surv_treated",
    "rmst_diff", "rmst_diff_ci_low", "rmst_diff_ci_high",
}  # fmt: skip


def _config(name: str, store: Path, *overrides: str, learners: bool = False):
    """A shipped config writing to ``store``; its learners only when a test asks for them
    (cross-fitting all of them, 5 folds x 10 repeats as shipped, is what one slow test below
    checks; the default run checks the same with 2 folds once). Without learners, in one
    process: the figures are all that is left to spread over workers."""
    alone = ["learners=[]", "execution.n_jobs=1"]
    keep = [] if learners or any(o.startswith("learners") for o in overrides) else alone
    return load_config(ROOT / "configs" / name, [f"tracking.uri={store}", *keep, *overrides])


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        # As shipped, the MIROCALS config cross-fits six learners 5 folds x 10 repeats: about
        # 100 s, 70 % of it cross-fitting, which nothing below depends on. The default run
        # keeps every other setting (all learners, SHAP, models, two workers) and cross-fits
        # 2 folds once (every patient still gets an out-of-fold estimate); CI also runs it as
        # shipped.
        pytest.param("mirocals.yaml", ["cv.folds=2", "cv.repeats=1"], id="mirocals.yaml-small-cv"),
        pytest.param("mirocals.yaml", [], id="mirocals.yaml", marks=pytest.mark.slow),
        pytest.param("gbsg2.yaml", [], id="gbsg2.yaml"),
    ],
)
def test_shipped_config_runs_and_logs_the_contract(name, overrides, store):
    result = run(_config(name, store, *overrides, learners=True))
    client = MlflowClient(result.store.tracking_uri)
    logged = client.get_run(result.run_id)
    assert logged.info.status == "FINISHED"
    assert set(logged.data.metrics) >= CONTRACT_METRICS
    assert all(math.isfinite(logged.data.metrics[k]) for k in CONTRACT_METRICS)
    tags = logged.data.tags
    for key in ("stratify.version", "stratify.git_commit", "stratify.config_hash",
                "stratify.dataset_hash", "mlflow.note.content"):  # fmt: skip
        assert tags[key], key
    assert tags["stratify.config_hash"] == result.config.config_hash
    assert logged.data.params["horizon"] == str(result.config.horizon)
    artifacts = _artifacts(client, result.run_id)
    assert {"config.yaml", "tables/trial_analysis.csv", "figures/km_by_arm.png",
            "figures/km_by_stratum.png", "figures/forest_plot.png",
            "figures/interaction_hr.png", "report.html"} <= artifacts  # fmt: skip
    assert not any(a.startswith("data/") for a in artifacts)
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.name == result.config.name
    assert experiment.artifact_location.startswith((store / "artifacts").as_uri())
    assert len(result.learner_run_ids) == len(result.config.learners)


def test_flagship_run_agrees_with_r_on_its_own_trial(store):
    """`stratify run configs/mirocals.yaml` analyses the seed-3 trial exactly as R does.

    Reference: tests/data/r_reference_mirocals_seed3.json (tests/r/reference_extra.R on the
    same simulated trial, exported by tests/r/export_references.py); rtol 1e-6.
    """
    reference = json.loads(
        (ROOT / "tests" / "data" / "r_reference_mirocals_seed3.json").read_text()
    )
    metrics = run(_config("mirocals.yaml", store)).metrics
    terms = {
        "hr_unadjusted": reference["cox_unadjusted"]["terms"]["arm"],
        "hr_adjusted": reference["cox_adjusted"]["terms"]["arm"],
        "hr_interaction_arm": reference["cox_interaction"]["terms"]["arm"],
    }
    for key, ref in terms.items():
        for suffix, name in (("", "hr"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            assert metrics[key + suffix] == pytest.approx(ref[name], rel=1e-6), key + suffix
    inter = reference["cox_interaction"]["terms"]["arm:csf_pnfh"]
    assert metrics["interaction_hr_per_unit"] == pytest.approx(inter["hr"], rel=1e-6)
    assert metrics["interaction_p"] == pytest.approx(inter["p"], rel=1e-6)
    assert metrics["logrank_p"] == pytest.approx(reference["logrank"]["p"], rel=1e-6)
    assert (metrics["n_patients"], metrics["n_events"]) == (220, 90)


def test_same_config_and_seed_give_the_same_numbers(store):
    a = run(_config("mirocals.yaml", store))
    b = run(_config("mirocals.yaml", store))
    c = run(_config("mirocals.yaml", store, "seed=7"))
    assert a.metrics == b.metrics
    assert dataset_hash(a.data) == dataset_hash(b.data) != dataset_hash(c.data)
    assert a.metrics["hr_unadjusted"] != c.metrics["hr_unadjusted"]


def test_patient_level_table_only_when_allowed(store):
    result = run(_config("mirocals.yaml", store, "tracking.log_patient_level=true"))
    client = MlflowClient(result.store.tracking_uri)
    assert "data/trial.csv" in _artifacts(client, result.run_id)
    local = client.download_artifacts(result.run_id, "data/trial.csv")
    table = pd.read_csv(local)
    assert len(table) == 220
    assert {"time", "event", "arm", "csf_pnfh", "tau_rmst", "tau_surv"} <= set(table.columns)


def test_user_csv_runs_like_a_builtin(tmp_path, store, trial_frame):
    csv = tmp_path / "trial.csv"
    trial_frame.to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: mine\nhorizon: 600\ndata:\n  path: trial.csv\n  modifier: marker\n"
        f"  cutpoints: [2000]\ntracking:\n  uri: {store}\n"
    )
    result = run(load_config(cfg))
    assert result.metrics["n_patients"] == 200
    logged = MlflowClient(result.store.tracking_uri).get_run(result.run_id).data.metrics
    assert (logged["n_input"], logged["n_excluded"]) == (200, 0)
    assert result.data.covariates == ["age", "male", "stage=II", "stage=III", "marker"]


def test_bad_data_stops_before_any_run_is_created(tmp_path, store, trial_frame):
    csv = tmp_path / "trial.csv"
    trial_frame.assign(event=2).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: bad\nhorizon: 600\ndata:\n  path: trial.csv\ntracking:\n  uri: {store}\n"
    )
    with pytest.raises(StratifyInputError, match="column 'event'"):
        run(load_config(cfg))
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    assert client.get_experiment_by_name("bad") is None


def test_failure_while_logging_marks_the_run_failed(store, monkeypatch):
    from stratify.tracking.tracker import Tracker

    def boom(*args, **kwargs):
        raise RuntimeError("artifact store rejected the figure")

    monkeypatch.setattr(Tracker, "log_figure", boom)
    config = _config("gbsg2.yaml", store)
    data = load_trial(config)
    with pytest.raises(RuntimeError):
        run(config, data=data)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gbsg2").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["error"] == "RuntimeError: artifact store rejected the figure"


def test_complete_case_exclusions_are_logged(tmp_path, store, trial_frame):
    frame = trial_frame.assign(age=trial_frame["age"].where(trial_frame.index % 50 != 0))
    frame.to_csv(tmp_path / "trial.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: cc\nhorizon: 600\ndata:\n  path: trial.csv\n  missing: complete_case\n"
        f"tracking:\n  uri: {store}\n"
    )
    result = run(load_config(cfg))
    logged = MlflowClient(result.store.tracking_uri).get_run(result.run_id).data.metrics
    assert (logged["n_input"], logged["n_excluded"], logged["n_patients"]) == (200, 4, 196)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("horizon=641", "horizon 641 is beyond the last follow-up time"),
        ("data.cutpoints=[750,3700,90000]", "data.cutpoints: the csf_pnfh stratum '> 90000'"),
        ("data.covariates=[age,svc,male,male2]", "column 'male2' not found"),
    ],
)
def test_analysis_errors_stop_before_any_run_is_created(store, override, message):
    """Errors found by the analysis itself also leave the store untouched."""
    config = _config("mirocals.yaml", store, override)
    with pytest.raises(StratifyInputError, match=re.escape(message)):
        run(config)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    assert client.get_experiment_by_name("mirocals") is None


LEARNER_METRICS = {
    "c_index_harrell", "c_index_uno", "ibs", "rate_autoc", "rate_autoc_se", "rate_qini",
    "c_for_benefit", "heterogeneity_p", "cate_rmse", "cate_spearman",
    "heterogeneity_p_rate", "heterogeneity_p_blp", "blp_slope", "blp_slope_se",
}  # fmt: skip
FAST_LEARNERS = [*SMALL, "explain.background=20", "explain.n_bootstrap=50"]


def test_learners_get_nested_runs_with_the_contract_metrics(store):
    result = run(_config("mirocals.yaml", store, *FAST_LEARNERS, "tracking.log_models=true"))
    client = MlflowClient(result.store.tracking_uri)
    parent = client.get_run(result.run_id)
    assert parent.data.metrics["heterogeneity_p"] == result.evaluation.heterogeneity_p
    assert "Holm" in parent.data.tags["stratify.heterogeneity_method"]
    assert set(result.learner_run_ids) == {"t_learner", "cox_interaction"}
    for label, child_id in result.learner_run_ids.items():
        child = client.get_run(child_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == result.run_id
        # the parent's flattened config, plus what identifies the learner
        assert child.data.params.items() >= parent.data.params.items()
        assert child.data.params["learner"] == label
        assert child.info.run_name == f"mirocals-{label}-{result.config.config_hash[:7]}"
        assert set(child.data.metrics) >= LEARNER_METRICS
        assert 0 <= child.data.metrics["heterogeneity_p"] <= 1
        assert {
            "tables/benefit_calibration.csv",
            "figures/benefit_calibration.png",
            "tables/shap_importance.csv",
            "figures/shap_benefit.png",
        } <= _artifacts(client, child_id)
        assert child.data.metrics["modifier_rank"] in {1, 2, 3, 4, 5, 6}
        assert child.data.tags["stratify.shap_method"]
        # the learner's one-sentence description, with its own numbers
        note = child.data.tags["mlflow.note.content"]
        rank = ordinal(child.data.metrics["modifier_rank"])
        p = result.data.X.shape[1]
        assert note.startswith(f"{label}: csf_pnfh ranks {rank} of {p} for benefit; ")
        assert f"heterogeneity p = {child.data.metrics['heterogeneity_p']:.2g}." in note
    assert "figures/shap_time.png" in _artifacts(client, result.learner_run_ids["t_learner"])
    # each learner run serves its whole-trial fit: reloaded, it predicts what was explained
    mlflow.set_tracking_uri(result.store.tracking_uri)
    for label, child_id in result.learner_run_ids.items():
        served = mlflow.pyfunc.load_model(f"runs:/{child_id}/model").predict(result.data.X)
        fitted = result.explained.learners[label].learner.predict_cate(result.data.X)
        for column in ("cate_rmst", "cate_surv"):
            np.testing.assert_array_equal(served[column], fitted[column])
        assert client.get_run(child_id).data.tags["stratify.model_uri"].startswith("models:/")
    parent_artifacts = _artifacts(client, result.run_id)
    assert {"figures/modifier_benefit.png", "tables/modifier_benefit.csv"} <= parent_artifacts
    assert not {"predictions/oof_cate.csv", "predictions/benefit_shap.csv"} & parent_artifacts
    # The flagship trial: the Wald test gates a crossover near the published 3,700 pg/mL.
    m = parent.data.metrics
    assert 3000 < m["modifier_crossover"] < 4500
    low, high = m["modifier_crossover_ci_low"], m["modifier_crossover_ci_high"]
    assert low < m["modifier_crossover"] < high
    assert m["modifier_rank"] == result.explained.learners["t_learner"].metrics()["modifier_rank"]
    found = parent.data.tags["stratify.modifier_finding"]
    assert found.startswith("Estimated benefit ends at csf_pnfh")
    assert found in parent.data.tags["mlflow.note.content"]
    # the description opens with one sentence a reader of the runs table needs
    first = parent.data.tags["mlflow.note.content"].split("\n")[0]
    crossover = f"{m['modifier_crossover']:,.0f}"
    p = result.data.X.shape[1]
    assert first.startswith(f"csf_pnfh ranks {ordinal(m['modifier_rank'])} of {p} for benefit")
    assert f"benefit ends at csf_pnfh {crossover} [" in first
    assert first.endswith(f"heterogeneity p = {m['heterogeneity_p']:.2g} (2 learners).")


@pytest.mark.parametrize("test", ["rate", "blp"])
def test_the_configured_test_gives_each_learner_its_p_value(store, test):
    config = _config("mirocals.yaml", store, *FAST_LEARNERS, f"heterogeneity.test={test}")
    evaluation = learn(config, load_trial(config))
    for report in evaluation.learners.values():
        m = report.metrics
        assert m["heterogeneity_p"] == m[f"heterogeneity_p_{test}"]
        assert m["heterogeneity_p_rate"] != m["heterogeneity_p_blp"]
    expected = {"rate": "RATE AUTOC test", "blp": "calibration-slope (BLP) test"}[test]
    assert evaluation.heterogeneity_method.startswith(expected)


def test_out_of_fold_estimates_are_logged_only_when_allowed(store):
    result = run(_config("mirocals.yaml", store, *FAST_LEARNERS, "tracking.log_patient_level=true"))
    client = MlflowClient(result.store.tracking_uri)
    table = pd.read_csv(client.download_artifacts(result.run_id, "predictions/oof_cate.csv"))
    assert list(table.columns) == ["patient", "learner", "cate_rmst", "cate_surv"]
    assert len(table) == 2 * 220
    assert table.groupby("learner")["patient"].nunique().to_dict() == {
        "cox_interaction": 220,
        "t_learner": 220,
    }
    shap_path = client.download_artifacts(result.run_id, "predictions/benefit_shap.csv")
    shap_table = pd.read_csv(shap_path)
    assert list(shap_table.columns) == [
        "patient", "learner", "covariate", "shap_cate_rmst", "shap_cate_surv",
    ]  # fmt: skip
    assert len(shap_table) == 2 * 220 * 5


def test_explanations_can_be_switched_off(store):
    result = run(_config("mirocals.yaml", store, *FAST_LEARNERS, "explain.enabled=false"))
    client = MlflowClient(result.store.tracking_uri)
    assert result.explained is None
    assert "modifier_crossover" not in client.get_run(result.run_id).data.metrics
    assert "figures/shap_benefit.png" not in _artifacts(client, result.learner_run_ids["t_learner"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learners=[x_learner]", "learners.0: unknown learner 'x_learner'"),
        ("learners=[{name: t_learner, params: {trees: 5}}]", "learners.0: "),
    ],
)
def test_bad_learners_stop_before_any_run(store, override, message):
    with pytest.raises(StratifyInputError, match=re.escape(message)):
        # explain.learner=null: the shipped config explains t_learner, absent from these lists
        run(_config("mirocals.yaml", store, override, "explain.learner=null"))
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    assert client.get_experiment_by_name("mirocals") is None


def test_a_modifier_that_barely_varies_is_reported_not_fatal(store, mirocals_frame):
    """No curve can be drawn through a modifier constant in 97.7 % of patients: say so, go on."""
    config = _config(
        "mirocals.yaml", store, *SMALL, "learners=[{name: t_learner, params: {base_params: "
        "{n_estimators: 10}}}]", "explain.learner=null",
    )  # fmt: skip
    frame = mirocals_frame
    frame["marker"] = 0.0
    frame.loc[:4, "marker"] = 1.0  # 5 of 220 patients
    data = TrialData.from_frame(frame, covariates=["age", "svc", "marker"], modifier="marker")
    explained = explain_learners(config, data, learn(config, data))
    assert explained.modifier is None and explained.learner_curves == {}
    assert finding(explained) == (
        "Modifier analysis not done: modifier 'marker' barely varies: no dependence can be shown"
    )
    assert 1 <= explained.metrics()["modifier_rank"] <= 3
    assert "modifier_crossover" not in explained.metrics()
