"""Save one small model per learner with the current stratify, for the load-compatibility test.

Run from the repository root (once, with the release whose models must keep loading):

    .venv/bin/python tests/data/legacy_models/make_legacy_models.py

It writes ``<learner>.tar.xz`` (the MLflow model folder) and ``<learner>.csv`` (the
model's predictions on 5 simulated patients, read back by the test) beside this file.
The models of this folder were written at commit 0994e8f (before the regrouping of
issue #13); ``tests/test_serving.py::test_models_saved_before_the_regrouping_still_load``
checks that they load and predict the same numbers.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from stratify.data.simulate import simulate_mirocals
from stratify.data.trial_data import TrialData
from stratify.learners.registry import make_learner
from stratify.serving import save_learner_model

HERE = Path(__file__).resolve().parent
SMALL = {
    "s_learner": {"base_params": {"n_estimators": 10}},
    "t_learner": {"base_params": {"n_estimators": 10}},
    "coxnet_interaction": {},
    "dr_learner": {"n_estimators": 10},
    "cox_interaction": {},
    "causal_survival_forest": {"n_estimators": 20},
}


def main() -> None:
    frame = simulate_mirocals(120, seed=5)
    trial = TrialData.from_frame(frame, modifier="csf_pnfh", log_transform=["delta_fs"])
    patients = trial.X.head(5)
    for name, params in SMALL.items():
        learner = make_learner(name, params, random_state=0, modifier="csf_pnfh", horizon=640)
        learner.fit(trial.X, trial.y, trial.arm)
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_learner_model(
                learner, Path(tmp) / name, covariates=trial.covariates, horizon=640,
                times=[160, 320, 640],
            )  # fmt: skip
            import mlflow.pyfunc

            served = mlflow.pyfunc.load_model(str(folder)).predict(patients)
            served.to_csv(HERE / f"{name}.csv", float_format="%.17g")
            with tarfile.open(HERE / f"{name}.tar.xz", "w:xz") as tar:
                tar.add(folder, arcname=name)
    patients.to_csv(HERE / "patients.csv", float_format="%.17g")


if __name__ == "__main__":
    main()
