"""Where the time of ``stratify run CONFIG`` goes: one phase at a time, in one process.

Times the phases of :func:`stratify.pipeline.experiment.run` separately (imports, trial
analysis, cross-fitting and evaluation, explanations, their figures), then one
cross-fitted fit of each learner alone (2 repeats × the config's folds, one
process), for orientation: the phases run here in sequence and without MLflow, so
they do not add up to the end-to-end time that ``experiments/time_run.py``
measures.

Usage::

    python experiments/time_phases.py configs/mirocals.yaml
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

start = time.perf_counter()
from stratify.config import load_config  # noqa: E402  (the import time is measured)
from stratify.pipeline.experiment import analyse, learn, load_trial  # noqa: E402
from stratify.pipeline.explanation import explain_learners  # noqa: E402
from stratify.report.figures.explain import learner_figures, modifier_figures  # noqa: E402
from stratify.validation.crossfit import NamedLearner, cross_fit  # noqa: E402

IMPORT_S = time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"imports: {IMPORT_S:.1f} s")
    config = load_config(args.config)
    phases = {}
    tick = time.perf_counter()
    data = load_trial(config)
    analysis, _ = analyse(config, data)
    phases["analysis and its figures"] = time.perf_counter() - tick
    tick = time.perf_counter()
    evaluation = learn(config, data)
    phases["cross-fitting and evaluation"] = time.perf_counter() - tick
    tick = time.perf_counter()
    explained = explain_learners(config, data, evaluation, analysis)
    phases["explanations"] = time.perf_counter() - tick
    tick = time.perf_counter()
    for x in explained.learners.values():
        learner_figures(x, config.horizon)
    modifier_figures(explained)
    phases["explanation figures"] = time.perf_counter() - tick
    for phase, seconds in phases.items():
        print(f"{phase}: {seconds:.1f} s")
    for spec in config.learners:
        tick = time.perf_counter()
        named = [NamedLearner(spec.run_label, spec.name, dict(spec.params))]
        cross_fit(named, data, horizon=config.horizon, folds=config.cv.folds, repeats=2,
                  seed=config.seed, n_jobs=1)  # fmt: skip
        per_fit = (time.perf_counter() - tick) / (2 * config.cv.folds)
        print(f"one fit of {spec.run_label} (fit, predict, risk metrics): {per_fit:.2f} s")


if __name__ == "__main__":
    main()
