"""The trial a config describes: from a file, a bundled dataset or the simulator.

Kept apart from :mod:`stratify.pipeline.experiment` so that reading and checking a trial
imports no more than the data layer: a bad file is reported in about 2 s, not
after loading MLflow, shap and the learners.
"""

from __future__ import annotations

from stratify.config import ExperimentConfig
from stratify.data.datasets import load_dataset
from stratify.data.io import read_table
from stratify.data.simulate import simulate
from stratify.data.trial_data import TrialData


def load_trial(config: ExperimentConfig) -> TrialData:
    """Build the trial a config describes, from a file, a bundled dataset or the simulator.

    Raises
    ------
    StratifyInputError
        If the file cannot be read or its columns fail validation.
    """
    spec = config.data
    if spec.simulate is not None:
        sim = spec.simulate
        frame = simulate(
            sim.design,
            n=sim.n,
            seed=config.simulation_seed,
            horizon=config.horizon,
            effect=sim.effect,
            dropout=sim.dropout,
        )
    elif spec.dataset is not None:
        frame = load_dataset(spec.dataset)
    else:
        frame = read_table(config.data_path)
    return TrialData.from_frame(
        frame,
        time=spec.time,
        event=spec.event,
        arm=spec.arm,
        treated=spec.treated,
        covariates=spec.covariates,
        modifier=spec.modifier,
        id_column=spec.id,
        missing=spec.missing,
        log_transform=spec.log_transform,
    )


__all__ = ["load_trial"]
