"""One experiment, one pass: config → trial data → analyses → figures → MLflow run.

``run(config) -> Result`` is what ``stratify run`` calls, and what tests call
in-process. Everything that can fail on the user's input (config, data, the
analysis and its figures) happens before the tracking run is created, and the
store is opened (and checked) before the expensive work starts; the open run
only records, and a failure while recording closes it as FAILED with an
``error`` tag.
"""

from __future__ import annotations

import hashlib
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from stratify import __version__
from stratify.config import ExperimentConfig
from stratify.data import TrialData
from stratify.data.source import load_trial
from stratify.exceptions import StratifyInputError
from stratify.explain.results import Explained
from stratify.learners.registry import make_learner
from stratify.learners.scores import dr_scores
from stratify.pipeline import execution
from stratify.pipeline.explanation import explain_learners, fit_whole_trial
from stratify.rendering import render_all
from stratify.report.figures import trial as plots
from stratify.report.figures.benefit import benefit_calibration_plot
from stratify.report.figures.explain import learner_figures, modifier_figures
from stratify.report.html import build_report, check_report_path, write_report
from stratify.report.run import CALIBRATION_FIGURE, MODIFIER_FIGURES, RunResult
from stratify.report.summary import describe, finding, headline, learner_headline
from stratify.serving import log_learner_model
from stratify.tracking.tracker import Store, Tracker
from stratify.trial import TrialAnalysis, analyse_trial
from stratify.validation.crossfit import NamedLearner, cross_fit
from stratify.validation.evaluation import Evaluation, evaluate


@dataclass(frozen=True, kw_only=True)
class Result(RunResult):
    """What one experiment produced (a :class:`~stratify.report.run.RunResult`: config,
    data, analysis, figures, evaluation, explanations, drawn figures) and where it was
    recorded."""

    run_id: str
    store: Store
    learner_run_ids: dict[str, str] = field(default_factory=dict)
    report_path: Path | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics logged to the run."""
        return run_metrics(self.analysis, self.data)


def run_metrics(
    analysis: TrialAnalysis,
    data: TrialData,
    evaluation: Evaluation | None = None,
    explained: Explained | None = None,
) -> dict[str, float]:
    """Everything the parent run logs as metrics: analysis, rows used, verdict, modifier."""
    counts = {"n_input": data.n_input, "n_excluded": sum(data.exclusions.values())}
    if evaluation is not None:
        counts["heterogeneity_p"] = evaluation.heterogeneity_p
    if explained is not None:
        counts |= explained.metrics()
    return analysis.metrics() | {k: float(v) for k, v in counts.items()}


def learn(config: ExperimentConfig, data: TrialData) -> Evaluation | None:
    """Cross-fit the config's learners and evaluate them (None without learners)."""
    if not config.learners:
        return None
    named = [NamedLearner(s.run_label, s.name, dict(s.params)) for s in config.learners]
    # The doubly robust scores that judge the learners are computed in this process while
    # the workers cross-fit (the main process only waits for them then): the same numbers,
    # their seconds no longer added to the run's.
    with ThreadPoolExecutor(max_workers=1) as aside:
        pending = aside.submit(
            dr_scores, data.X, data.y, data.arm, horizon=config.horizon,
            n_folds=config.cv.folds, random_state=config.seed,
        )  # fmt: skip
        fits = cross_fit(
            named,
            data,
            horizon=config.horizon,
            folds=config.cv.folds,
            repeats=config.cv.repeats,
            seed=config.seed,
            n_jobs=config.execution.n_jobs,
        )
        scores = pending.result()
    return evaluate(
        fits,
        data,
        scores,
        horizon=config.horizon,
        seed=config.seed,
        n_bootstrap=config.heterogeneity.n_bootstrap,
        primary=config.heterogeneity.primary,
        test=config.heterogeneity.test,
    )


def analyse(config: ExperimentConfig, data: TrialData) -> tuple[TrialAnalysis, dict[str, Figure]]:
    """The trial analysis and its figures: everything a run logs, computed before it opens.

    Raises
    ------
    StratifyInputError
        If the data cannot support the analysis (horizon beyond follow-up, a
        constant covariate, an empty stratum, a Cox model that cannot be fitted).
    """
    analysis = analyse_trial(data, horizon=config.horizon, cutpoints=config.data.cutpoints)
    km = plots.km_by_arm(data, horizon=config.horizon, logrank_p=analysis.logrank_p)
    figures = {"figures/km_by_arm.png": km}
    if analysis.strata:
        figures["figures/km_by_stratum.png"] = plots.km_by_stratum(data, analysis)
    figures["figures/forest_plot.png"] = plots.forest_plot(analysis)
    if analysis.cox_interaction is not None:
        figures["figures/interaction_hr.png"] = plots.interaction_curve(
            analysis, data, show_patients=config.tracking.log_patient_level
        )
    return analysis, figures


def run(
    config: ExperimentConfig, *, data: TrialData | None = None, report: str | Path | None = None
) -> Result:
    """Run an experiment and record it as one MLflow run.

    Input and analysis errors, a report path that cannot be written and a
    store that cannot be reached or opened stop the experiment before the work
    starts (a new store folder is checked then and its database created while
    the work runs: a failure to create it stops the experiment before the run
    is created); a worker process that dies stops it before the run is created. A failure
    while logging (figures, tables, the report, models) closes the run as
    FAILED with an ``error`` tag. Every run logs its self-contained HTML
    report as the artifact ``report.html``.

    Parameters
    ----------
    config : ExperimentConfig
        The validated config.
    data : TrialData, optional
        The trial, if already loaded (e.g. by ``stratify run`` to report its
        size early); default: built from ``config``.
    report : str or Path, optional
        Also write the report to this file (checked before any work starts;
        written atomically once the run is recorded).

    Returns
    -------
    Result

    Raises
    ------
    StratifyInputError
        On bad input, or a store that cannot be reached or opened.
    stratify.pipeline.execution.WorkerLostError
        If a worker process dies during the work (no run is created).
    stratify.tracking.tracker.StoreError
        If the store fails while the run is recorded (the run is closed FAILED).
    """
    if report is not None:
        report = check_report_path(report)
    data = load_trial(config) if data is None else data
    check_learners(config, data)
    analysis, figures = analyse(config, data)
    tracker = open_tracker(config)  # a store that cannot be used fails before the work
    with execution.backend(config.execution):  # joblib's processes, or a Dask cluster
        evaluation = learn(config, data)
        explained = explain_learners(config, data, evaluation, analysis) if evaluation else None
        drawn = draw_figures(config, evaluation, explained)
        every = [*figures.values(), *(f for group in drawn.values() for f in group.values())]
        render_all(every, n_jobs=config.execution.n_jobs)  # logged and embedded as rendered
    produced = RunResult(config, data, analysis, figures, evaluation, explained, drawn)
    tags = {
        "stratify.version": __version__,
        "stratify.git_commit": _git_commit(),
        "stratify.config_hash": config.config_hash,
        "stratify.dataset_hash": dataset_hash(data),
        "stratify.data_source": _data_source(config),
        "mlflow.note.content": describe(produced),
    }
    if evaluation is not None:
        tags["stratify.heterogeneity_method"] = evaluation.heterogeneity_method
    run_name = f"{config.name}-{config.config_hash[:7]}"
    with tracker.run(config.experiment_name, run_name=run_name, tags=tags) as run_id:
        tracker.log_params(run_id, config.flat_params())
        tracker.log_text(run_id, config.to_yaml(), "config.yaml")
        tracker.log_metrics(run_id, run_metrics(analysis, data, evaluation, explained))
        tracker.log_table(run_id, analysis.table(), "tables/trial_analysis.csv")
        for path, figure in figures.items():
            tracker.log_figure(run_id, figure, path)
        if explained is not None:
            _log_explained(tracker, run_id, produced)
        if config.tracking.log_patient_level:
            tracker.log_table(run_id, patient_table(data), "data/trial.csv")
            if evaluation is not None:
                tracker.log_table(run_id, evaluation.oof_table(), "predictions/oof_cate.csv")
            if explained is not None:
                shap_table = explained.patient_table(data.X.index)
                tracker.log_table(run_id, shap_table, "predictions/benefit_shap.csv")
        children = _log_learners(tracker, run_id, produced) if evaluation else {}
        provenance = {k: v for k, v in tags.items() if k != "mlflow.note.content"}
        provenance |= {"mlflow.run_id": run_id, "mlflow.experiment": config.experiment_name}
        page = build_report(produced, provenance, headline=headline(produced))
        tracker.log_text(run_id, page, "report.html")
    if report is not None:
        write_report(page, report)
    return Result(
        **{f.name: getattr(produced, f.name) for f in fields(RunResult)},
        run_id=run_id, store=tracker.store, learner_run_ids=children, report_path=report,
    )  # fmt: skip


def open_tracker(config: ExperimentConfig) -> Tracker:
    """The config's store, opened and checked, with its experiment in place.

    Opening it also closes the runs that ended processes of this host left RUNNING
    (:meth:`stratify.tracking.tracker.Tracker.close_orphans`). A store folder without a
    database yet is created in the background while the run works (its folder is
    created and checked now); its experiment is created with the run.

    Raises
    ------
    StratifyInputError
        Naming ``tracking.uri`` (or ``tracking.experiment``) if the store cannot be
        reached, opened or used.
    """
    tracker = Tracker(Store.from_uri(config.tracking_uri), create_in_background=True)
    if not tracker.creating:
        tracker.experiment_id(config.experiment_name)
    return tracker


def draw_figures(config, evaluation, explained) -> dict[str, dict[str, Figure]]:
    """Every figure of the explanations and of each learner run, drawn once.

    The runs log them and the report embeds the same figures. Keys: ``""`` for
    the parent run's modifier figure (its per-patient SHAP panel only with
    ``tracking.log_patient_level``), each learner's run label for its
    calibration and SHAP figures; values map artifact paths to figures.
    """
    drawn = {
        MODIFIER_FIGURES: (
            modifier_figures(explained, config.tracking.log_patient_level) if explained else {}
        )
    }
    for label, report in evaluation.learners.items() if evaluation else ():
        title = f"Calibration for benefit: {label}"
        figures = {CALIBRATION_FIGURE: benefit_calibration_plot(report.calibration, title=title)}
        if explained is not None:
            figures |= learner_figures(explained.learners[label], config.horizon)
        drawn[label] = figures
    return drawn


def _log_explained(tracker, run_id, produced: RunResult) -> None:
    """The modifier analysis on the parent run: its curve, figure and one-sentence finding."""
    explained = produced.explained
    for path, figure in produced.drawn[MODIFIER_FIGURES].items():
        tracker.log_figure(run_id, figure, path)
    if explained.modifier is not None:
        tracker.log_table(run_id, explained.modifier.table(), "tables/modifier_benefit.csv")
    if found := finding(explained):
        tracker.set_tags(run_id, {"stratify.modifier_finding": found})


def _log_learners(tracker, parent_id, produced: RunResult) -> dict[str, str]:
    """One nested run per learner: parameters, metrics, calibration, its explanation and,
    when the config asks for it, the learner fitted on the whole trial as a pyfunc model."""
    config, data, explained = produced.config, produced.data, produced.explained
    ids = {}
    for spec in config.learners:
        report = produced.evaluation.learners[spec.run_label]
        name = f"{config.name}-{spec.run_label}-{config.config_hash[:7]}"
        explanation = None if explained is None else explained.learners[spec.run_label]
        tags = {
            "stratify.learner": spec.name,
            "stratify.config_hash": config.config_hash,
            "mlflow.note.content": learner_headline(
                spec.run_label, report, explanation, data.X.shape[1]
            ),
        }
        with tracker.run(
            config.experiment_name, run_name=name, tags=tags, parent_run_id=parent_id
        ) as child:
            # the whole flattened config too, so that learner runs filter and compare in the UI
            # by what changed between configs (seed, horizon, covariates, ...)
            params = config.flat_params() | {"learner": spec.name}
            tracker.log_params(child, params | {f"params.{k}": v for k, v in spec.params.items()})
            tracker.log_metrics(child, report.metrics)
            tracker.log_table(child, report.calibration, "tables/benefit_calibration.csv")
            for path, figure in produced.drawn[spec.run_label].items():
                tracker.log_figure(child, figure, path)
            if explanation is not None:
                _log_learner_explanation(tracker, child, explanation)
            if config.tracking.log_models:
                _log_model(tracker, child, spec, config, data, explanation)
        ids[spec.run_label] = child
    return ids


def _log_model(tracker, run_id, spec, config, data, explanation) -> None:
    """The learner fitted on the whole trial (the explained one when there is one) as a model
    serving benefit, with survival per arm at ``config.explain.times`` times up to the horizon;
    an input example (patient rows) only with ``tracking.log_patient_level``."""
    learner = explanation.learner if explanation is not None else None
    if learner is None:
        learner = fit_whole_trial(spec.name, dict(spec.params), config, data)
    with tracker.writing_artifact(run_id, "model"):
        uri = log_learner_model(
            tracker,
            run_id,
            learner,
            covariates=data.covariates,
            horizon=config.horizon,
            times=config.curve_times,
            input_example=data.X.head(3) if config.tracking.log_patient_level else None,
        )
    tracker.set_tags(run_id, {"stratify.model_uri": uri})


def _log_learner_explanation(tracker, run_id, explanation) -> None:
    tracker.log_metrics(run_id, explanation.metrics())
    tracker.set_tags(run_id, {"stratify.shap_method": explanation.benefit.method})
    tracker.log_table(run_id, explanation.importance(), "tables/shap_importance.csv")
    if explanation.interactions is not None:
        tracker.log_table(run_id, explanation.interactions, "tables/arm_interactions.csv")


def check_learners(config: ExperimentConfig, data: TrialData) -> None:
    """Build every configured learner once, so bad names or params fail before any work.

    Raises
    ------
    StratifyInputError
        Naming ``learners.<i>`` and the problem.
    """
    for i, spec in enumerate(config.learners):
        try:
            make_learner(
                spec.name, dict(spec.params), random_state=0, modifier=data.modifier,
                horizon=config.horizon,
            )  # fmt: skip
        except StratifyInputError as exc:
            raise StratifyInputError(f"learners.{i}: {exc}") from None


def patient_table(data: TrialData) -> pd.DataFrame:
    """The analysed trial, one row per patient (logged only when allowed by the config)."""
    frame = data.X.assign(time=data.time, event=data.event.astype(int), arm=data.arm)
    if data.truth is not None:
        frame = frame.join(data.truth)
    return frame.reset_index()


def dataset_hash(data: TrialData) -> str:
    """SHA-256 (first 12 hex digits) of the analysed data: covariates, outcome and arm."""
    frame = patient_table(data)
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(rows.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:12]


def _data_source(config: ExperimentConfig) -> str:
    spec = config.data
    if spec.simulate is not None:
        return (
            f"simulate:{spec.simulate.design}(n={spec.simulate.n}, seed={config.simulation_seed})"
        )
    if spec.dataset is not None:
        return f"dataset:{spec.dataset}"
    return f"file:{Path(spec.path).name}"


def _git_commit() -> str:
    """Commit of the stratify source (``-dirty`` if modified), or ``unknown``.

    Only when this file is tracked by the surrounding checkout: an installed copy of
    stratify inside some other repository must not be tagged with that repository's commit.
    """
    here = Path(__file__).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(here.parent), *args], capture_output=True, text=True, timeout=10
        )

    try:
        if git("ls-files", "--error-unmatch", here.name).returncode != 0:
            return "unknown"
        described = git("describe", "--always", "--dirty", "--abbrev=40")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip() or "unknown"


__all__ = [
    "Result",
    "analyse",
    "dataset_hash",
    "describe",
    "load_trial",
    "open_tracker",
    "patient_table",
    "run",
    "run_metrics",
]
