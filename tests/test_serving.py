"""Learners served as MLflow models: saved or logged, loaded back, predicting identically."""

import json
import subprocess
import sys
from pathlib import Path

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from kit import DATA, MIROCALS
from stratify.config.loader import load_config
from stratify.exceptions import StratifyInputError
from stratify.learners import LEARNERS, make_learner
from stratify.pipeline.experiment import load_trial
from stratify.serving import (
    BenefitModel,
    log_learner_model,
    output_columns,
    read_learner,
    save_learner_model,
)
from stratify.tracking.tracker import Store, Tracker

HORIZON = 640.0
TIMES = [80.0, 213.5, 320.0, 640.0]
#: Saved sizes measured on the MIROCALS config (n = 220, seed 3, shipped learner settings):
#: 0.40, 0.30, 0.12, 0.16 and 0.12 MB, about 0.11 MB of which is the bundled stratify code
#: (0.08 MB more since; the causal survival forest's two forests of 2,000 trees: 0.47 MB).
MAX_MB = {
    "s_learner": 0.8,
    "t_learner": 0.6,
    "coxnet_interaction": 0.3,
    "dr_learner": 0.35,
    "cox_interaction": 0.3,
    "causal_survival_forest": 0.8,
}


@pytest.fixture(scope="module")
def trial():
    return load_trial(load_config(MIROCALS))


@pytest.fixture(scope="module")
def patients():
    """New patients: another trial from the same design, encoded the same way."""
    return load_trial(load_config(MIROCALS, ["seed=11"])).X.head(60)


@pytest.fixture(scope="module")
def learners(trial):
    """Every learner of the MIROCALS config, fitted once on the whole trial."""
    config = load_config(MIROCALS)
    return {
        spec.name: make_learner(
            spec.name, dict(spec.params), random_state=config.seed, modifier=trial.modifier,
            horizon=config.horizon,
        ).fit(trial.X, trial.y, trial.arm)
        for spec in config.learners
    }  # fmt: skip


@pytest.fixture(scope="module")
def saved(learners, trial, tmp_path_factory):
    """Each learner saved once as an MLflow model: name -> folder."""
    root = tmp_path_factory.mktemp("models")
    return {
        name: save_learner_model(
            learner, root / name, covariates=trial.covariates, horizon=HORIZON, times=TIMES
        )
        for name, learner in learners.items()
    }


@pytest.fixture
def tracking_uri(store, monkeypatch):
    """The test store as MLflow's global tracking URI (as a user loading a model sets it)."""
    uri = Store.from_uri(str(store)).tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def expected(learner, X) -> pd.DataFrame:
    """What the served model must return, from the in-memory learner."""
    curves = [learner.predict_survival(X, arm, TIMES) for arm in (0, 1)]
    columns = output_columns(TIMES)
    frame = pd.DataFrame(np.hstack(curves), columns=columns[2:], index=X.index)
    return pd.concat([learner.predict_cate(X), frame], axis=1)


def test_the_mirocals_config_serves_every_learner(learners):
    assert set(learners) == set(LEARNERS)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_reloaded_model_predicts_identically(name, saved, learners, patients):
    served = mlflow.pyfunc.load_model(str(saved[name])).predict(patients)
    want = expected(learners[name], patients)
    assert list(served.columns) == output_columns(TIMES)
    assert served.index.equals(patients.index)
    assert_array_equal(served.to_numpy(), want.to_numpy())


def test_output_columns_name_arms_and_days():
    assert output_columns([80, 213.5, 640.0]) == [
        "cate_rmst",
        "cate_surv",
        "surv_control@80",
        "surv_control@213.5",
        "surv_control@640",
        "surv_treated@80",
        "surv_treated@213.5",
        "surv_treated@640",
    ]


def test_signature_config_and_metadata(saved, trial):
    model = mlflow.pyfunc.load_model(str(saved["t_learner"]))
    inputs, outputs = model.metadata.signature.inputs, model.metadata.signature.outputs
    assert inputs is None  # MLflow would refuse int and bool columns for double inputs
    assert outputs.input_names() == output_columns(TIMES)
    assert {t.name for t in outputs.input_types()} == {"double"}
    assert model.metadata.metadata["covariates"] == trial.covariates
    assert model.model_config == {"covariates": trial.covariates, "horizon": 640.0, "times": TIMES}
    meta = model.metadata.metadata
    assert (meta["learner"], meta["horizon_days"], meta["times_days"]) == ("t_learner", 640, TIMES)
    assert meta["outputs"] == output_columns(TIMES)


def test_requirements_pin_only_third_party_packages(saved):
    folder = saved["s_learner"]
    pins = (folder / "requirements.txt").read_text().split()
    names = [p.split("==")[0] for p in pins]
    assert all("==" in p for p in pins)
    assert names == [
        "mlflow",
        "cloudpickle",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "scikit-survival",
    ]
    # PyPI's "stratify" is another project: the model carries its own code instead.
    code = folder / "artifacts" / "code" / "stratify"
    assert (code / "learners" / "meta.py").is_file()
    assert not (code / "tracking.py").exists()
    assert not (folder / "input_example.json").exists()  # no patient rows by default


def test_missing_covariates_are_named(saved, learners, trial, patients):
    incomplete = patients.drop(columns=["svc", "csf_pnfh"])
    model = mlflow.pyfunc.load_model(str(saved["t_learner"]))
    # no input schema: the model itself names what is missing, in one line
    with pytest.raises(StratifyInputError, match=r"missing covariate\(s\) 'svc', 'csf_pnfh'"):
        model.predict(incomplete)
    direct = BenefitModel(
        learners["t_learner"], covariates=trial.covariates, horizon=HORIZON, times=TIMES
    )
    with pytest.raises(StratifyInputError, match=r"missing covariate\(s\) 'svc', 'csf_pnfh'"):
        direct.predict(None, incomplete)


def test_extra_columns_are_ignored_and_order_is_free(saved, patients):
    model = mlflow.pyfunc.load_model(str(saved["cox_interaction"]))
    plain = model.predict(patients)
    shuffled = patients[patients.columns[::-1]].assign(patient_id="p", time=1.0)
    pd.testing.assert_frame_equal(model.predict(shuffled), plain)


def test_missing_values_are_named(saved, patients):
    model = mlflow.pyfunc.load_model(str(saved["cox_interaction"]))
    with pytest.raises(StratifyInputError, match=r"covariate\(s\) 'age' of the model input"):
        model.predict(patients.assign(age=np.nan))


def test_logged_model_loads_from_its_run(store, tracking_uri, learners, trial, patients):
    tracker = Tracker(Store.from_uri(str(store)))
    learner = learners["t_learner"]
    with tracker.run("serving", run_name="t_learner") as run_id:
        uri = log_learner_model(
            tracker, run_id, learner, covariates=trial.covariates, horizon=HORIZON, times=TIMES
        )
    want = expected(learner, patients).to_numpy()
    for model_uri in (f"runs:/{run_id}/model", uri):
        assert_array_equal(mlflow.pyfunc.load_model(model_uri).predict(patients).to_numpy(), want)
    logged = tracker.client.get_logged_model(uri.removeprefix("models:/"))
    assert (logged.name, logged.source_run_id, str(logged.status)) == ("model", run_id, "READY")
    assert logged.tags["stratify.learner"] == "t_learner"
    outputs = tracker.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [logged.model_id]
    # Bad input is refused before anything is created in the store.
    with (
        pytest.raises(StratifyInputError, match="times must be"),
        tracker.run("serving", run_name="bad") as bad_run,
    ):
        log_learner_model(
            tracker, bad_run, learner, covariates=trial.covariates, horizon=HORIZON, times=[]
        )
    experiment = tracker.experiment_id("serving")
    assert len(tracker.client.search_logged_models([experiment])) == 1


def test_mirocals_models_are_compact(saved, learners):
    sizes = {
        name: sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
        for name, folder in saved.items()
    }
    assert all(sizes[name] < MAX_MB[name] for name in sizes), sizes
    stored = (saved["s_learner"] / "artifacts" / "learner.pkl.xz").stat().st_size
    assert stored < len(cloudpickle.dumps(learners["s_learner"])) / 5  # leaf curves compress


def test_dr_learner_is_served_without_its_training_scores(saved, learners):
    stored = read_learner(saved["dr_learner"] / "artifacts" / "learner.pkl.xz")
    assert not hasattr(stored, "scores_")
    assert hasattr(learners["dr_learner"], "scores_")  # the fitted learner is left alone
    meta = mlflow.pyfunc.load_model(str(saved["dr_learner"])).metadata.metadata
    assert "nuisance T-learner" in meta["survival_curves"]


def test_input_example_is_saved_only_when_given(learners, trial, patients, tmp_path):
    folder = save_learner_model(
        learners["cox_interaction"], tmp_path / "m", covariates=trial.covariates,
        horizon=HORIZON, times=TIMES, input_example=patients.head(2).assign(extra=1.0),
    )  # fmt: skip
    example = json.loads((folder / "input_example.json").read_text())
    assert example["columns"] == trial.covariates
    assert len(example["data"]) == 2


def _fresh_python(script: str, folder: Path) -> str:
    """Run ``script`` in a new interpreter in ``folder``; what it printed."""
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_model_loads_without_an_installed_stratify(saved, learners, patients, tmp_path):
    """The bundled code suffices: in a fresh interpreter whose path lacks the installed
    package, stratify is imported from the model folder and predicts identically."""
    installed = Path(sys.modules["stratify"].__file__).resolve().parents[1]
    patients.to_pickle(tmp_path / "X.pkl")
    script = f"""
import sys
from pathlib import Path
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path({str(installed)!r})]
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(saved["s_learner"])!r})
model.predict(pd.read_pickle({str(tmp_path / "X.pkl")!r})).to_pickle({str(tmp_path / "y.pkl")!r})
print(sys.modules["stratify"].__file__)
"""
    printed = _fresh_python(script, tmp_path)
    assert Path(printed).is_relative_to(saved["s_learner"] / "artifacts" / "code")
    served = pd.read_pickle(tmp_path / "y.pkl")
    assert_array_equal(served.to_numpy(), expected(learners["s_learner"], patients).to_numpy())


def test_an_installed_stratify_is_not_shadowed_by_the_saved_modules(saved, patients, tmp_path):
    """Loading a model first must not make later imports of stratify resolve to the partial
    copy saved with it: the whole installed package stays importable."""
    patients.to_pickle(tmp_path / "X.pkl")
    script = f"""
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(saved["t_learner"])!r})
model.predict(pd.read_pickle({str(tmp_path / "X.pkl")!r}))
import stratify.pipeline.experiment, stratify.explain
print(stratify.__file__)
"""
    printed = _fresh_python(script, tmp_path)
    assert Path(printed) == Path(sys.modules["stratify"].__file__)


def test_whole_number_and_boolean_columns_are_served(saved, learners, patients):
    """Trial files hold ages as integers and dummies as 0/1 or booleans."""
    model = mlflow.pyfunc.load_model(str(saved["cox_interaction"]))
    typed = patients.copy()
    for column in typed.columns:
        values = typed[column]
        if set(values.unique()) <= {0.0, 1.0}:
            typed[column] = values.astype(bool)
        elif (values == values.round()).all():
            typed[column] = values.astype(int)
    assert set(typed.dtypes.astype(str)) - {"float64"}  # some columns are no longer floats
    served = model.predict(typed)
    assert_array_equal(served.to_numpy(), model.predict(patients.astype(float)).to_numpy())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"covariates": ["age", "svc"]}, r"not the columns the learner was fitted on"),
        ({"times": [320.0, 80.0]}, r"times must be a non-empty, strictly increasing"),
        ({"times": [-1.0, 80.0]}, r"times must be"),
        ({"times": []}, r"times must be"),
        ({"horizon": 0}, r"horizon must be a positive number of days"),
    ],
)
def test_invalid_arguments_are_refused(change, message, learners, trial, tmp_path):
    kwargs = {"covariates": trial.covariates, "horizon": HORIZON, "times": TIMES} | change
    with pytest.raises(StratifyInputError, match=message):
        save_learner_model(learners["cox_interaction"], tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_unfitted_learner_and_wrong_dr_horizon_are_refused(learners, trial, tmp_path):
    kwargs = {"covariates": trial.covariates, "times": TIMES}
    unfitted = make_learner("t_learner", random_state=0, modifier=None, horizon=HORIZON)
    with pytest.raises(StratifyInputError, match="TLearner is not fitted"):
        save_learner_model(unfitted, tmp_path / "a", horizon=HORIZON, **kwargs)
    with pytest.raises(StratifyInputError, match="fitted for horizon 640"):
        save_learner_model(learners["dr_learner"], tmp_path / "b", horizon=365, **kwargs)


LEGACY = DATA / "legacy_models"


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_models_saved_before_the_regrouping_still_load(name, tmp_path):
    # models saved by the release before issue #13 moved the modules (the generating script
    # is tests/data/legacy_models/make_legacy_models.py): their pickles name the old module
    # paths and their entry point imports stratify.serving.BenefitModel
    import tarfile

    with tarfile.open(LEGACY / f"{name}.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    read = {"index_col": 0, "float_precision": "round_trip"}
    patients = pd.read_csv(LEGACY / "patients.csv", **read)
    expected = pd.read_csv(LEGACY / f"{name}.csv", **read)
    served = mlflow.pyfunc.load_model(str(tmp_path / name)).predict(patients)
    pd.testing.assert_frame_equal(served, expected, check_exact=True)
