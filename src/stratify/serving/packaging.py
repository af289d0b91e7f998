"""Saving and logging fitted learners as MLflow models, with what they need to load anywhere.

The saved model is served by :class:`~stratify.serving.model.BenefitModel`.

What is saved
-------------
* ``artifacts/learner.pkl.xz``: the fitted learner, cloudpickled and
  xz-compressed (lossless: predictions are bit-identical; the curves stored in
  survival-forest leaves compress about sevenfold). Fitted attributes that
  prediction does not use and that describe training patients are left out:
  ``DRLearner.scores_`` (the pseudo-outcomes).
* ``benefit_model.py`` (:data:`ENTRY_POINT`): MLflow's "models from code", so
  the wrapper is built from code rather than unpickled; the covariates, horizon
  and grid are its model config (``MLmodel``).
* ``artifacts/code/stratify``: the stratify modules that unpickling and
  running the learner import (found from their imports), so the model loads
  where stratify is not installed. They are used only then (appended to
  ``sys.path`` by the entry point), never in place of an installed stratify.
  ``requirements.txt`` pins only third-party packages: the name ``stratify``
  on PyPI belongs to an unrelated project and must never be installed from
  there.
* an input example only when one is given: by default no patient row is
  written, as ``tracking.log_patient_level`` is off by default.
* a signature of the outputs only: MLflow will not cast integer or boolean
  columns to a declared ``double`` input, and trial files hold whole-number
  ages and 0/1 dummies; the covariates are listed in the metadata and
  ``predict`` checks them by name.

With :mod:`stratify.tracking`, :mod:`stratify.serving` is the only package that imports mlflow.
This module opens no runs: :func:`log_learner_model` takes a
:class:`~stratify.tracking.tracker.Tracker` and a run id (no active run), so worker
processes can log too.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import lzma
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import stratify
from stratify.exceptions import StratifyInputError
from stratify.learners.base import CATELearner
from stratify.learners.dr import DRLearner
from stratify.learners.registry import LEARNERS
from stratify.serving.model import (
    LEARNER_ARTIFACT,
    BenefitModel,
    format_days,
    read_learner,
    select_covariates,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
    from mlflow.models import Model, ModelSignature, infer_signature

if TYPE_CHECKING:
    from stratify.tracking.tracker import Tracker

#: The code MLflow runs to build a saved model (MLflow's "models from code"): nothing is
#: unpickled but the learner.
ENTRY_POINT = """\
# Entry point of a stratify learner served by MLflow (see stratify.serving).
import sys
from pathlib import Path

from mlflow.models import set_model

try:  # the installed stratify, when there is one
    from stratify.serving import BenefitModel
except ImportError:  # otherwise the modules saved with the model, last on the path
    sys.path.append(str(Path(__file__).resolve().parent / "artifacts" / "code"))
    from stratify.serving import BenefitModel

set_model(BenefitModel())
"""


#: Third-party distributions the served model imports (pinned to the installed versions;
#: MLflow adds ``mlflow`` itself).
REQUIREMENTS = ("cloudpickle", "numpy", "pandas", "scipy", "scikit-learn", "scikit-survival")


#: Fitted attributes that prediction does not use and that describe training patients.
_NOT_SERVED = {DRLearner: ("scores_",)}


def save_learner_model(
    learner: CATELearner,
    path: str | Path,
    *,
    covariates: Sequence[str],
    horizon: float,
    times: Sequence[float],
    input_example: pd.DataFrame | None = None,
) -> Path:
    """Save a fitted learner as an MLflow ``python_function`` model in a new folder.

    Parameters
    ----------
    learner : CATELearner
        A fitted learner (see :mod:`stratify.learners`).
    path : str or pathlib.Path
        Folder to create (it must not exist or be empty).
    covariates : sequence of str
        The columns the learner was fitted on (checked), e.g. ``data.covariates``.
    horizon : float
        Horizon (days) of the served ``cate_rmst`` and ``cate_surv``; for
        ``dr_learner``, the one it was fitted for.
    times : sequence of float
        Strictly increasing, non-negative days at which each arm's survival is served.
    input_example : pandas.DataFrame, optional
        A few rows of covariates, saved as the model's input example and used
        with the model's output on them to infer its output signature.
        Default: one synthetic patient (every covariate 0) is used and no
        example is saved, so no patient data are written.

    Returns
    -------
    pathlib.Path
        The model folder; load it with ``mlflow.pyfunc.load_model(str(path))``.

    Raises
    ------
    StratifyInputError
        If the learner is not fitted, ``covariates`` are not its columns, the
        horizon or grid is invalid, or ``input_example`` lacks covariates.

    Examples
    --------
    >>> import tempfile
    >>> import mlflow
    >>> from stratify.data.simulate import simulate_mirocals
    >>> from stratify.data.trial_data import TrialData
    >>> from stratify.learners import CoxInteraction
    >>> trial = TrialData.from_frame(simulate_mirocals(220, seed=3), modifier="csf_pnfh")
    >>> learner = CoxInteraction(modifier="csf_pnfh", horizon=640)
    >>> learner = learner.fit(trial.X, trial.y, trial.arm)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_learner_model(learner, f"{tmp}/model", covariates=trial.covariates,
    ...                                 horizon=640, times=[320, 640])
    ...     served = mlflow.pyfunc.load_model(str(folder)).predict(trial.X.head(2))
    >>> served.columns.tolist()[:4]
    ['cate_rmst', 'cate_surv', 'surv_control@320', 'surv_control@640']
    >>> served[["cate_rmst", "cate_surv"]].equals(learner.predict_cate(trial.X.head(2)))
    True
    """
    path = Path(path)
    _save(_Spec.checked(learner, covariates, horizon, times, input_example), path, Model())
    return path


def log_learner_model(
    tracker: Tracker,
    run_id: str,
    learner: CATELearner,
    *,
    covariates: Sequence[str],
    horizon: float,
    times: Sequence[float],
    artifact_path: str = "model",
    input_example: pd.DataFrame | None = None,
) -> str:
    """Log a fitted learner to a run as an MLflow model (an MLflow 3 logged model).

    The model is created with the run as its source, marked as an output of the
    run, and finalised READY (FAILED if saving or uploading fails). It needs no
    active run: any process with a :class:`~stratify.tracking.tracker.Tracker` on the
    store can log to a run by id. It loads with
    ``mlflow.pyfunc.load_model(f"runs:/{run_id}/{artifact_path}")`` or with the
    returned URI, once the tracking URI is the store's
    (``mlflow.set_tracking_uri(tracker.store.tracking_uri)``).

    Parameters
    ----------
    tracker : stratify.tracking.tracker.Tracker
        Tracker of the store the run lives in.
    run_id : str
        The run that fitted the learner (e.g. a learner's child run).
    learner, covariates, horizon, times, input_example
        As in :func:`save_learner_model`.
    artifact_path : str
        Name of the model within the run (``runs:/<run_id>/<artifact_path>``).

    Returns
    -------
    str
        The model's URI, ``models:/<model_id>``.
    """
    spec = _Spec.checked(learner, covariates, horizon, times, input_example)
    client = tracker.client
    logged = client.create_logged_model(
        client.get_run(run_id).info.experiment_id,
        name=artifact_path,
        source_run_id=run_id,
        tags={"stratify.learner": _learner_name(learner)},
        params={
            "horizon": format_days(spec.horizon),
            "times": ",".join(map(format_days, spec.times)),
        },
        model_type="stratify-benefit",
    )
    try:
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        mlflow_model = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        with tempfile.TemporaryDirectory(prefix="stratify-model-") as tmp:
            local = Path(tmp) / "model"
            _save(spec, local, mlflow_model)
            with _quiet_copies():
                client.log_model_artifacts(logged.model_id, str(local))
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return f"models:/{logged.model_id}"


@dataclass(frozen=True)
class _Spec:
    """A learner and what its model serves, checked; the example and its output."""

    learner: CATELearner
    covariates: tuple[str, ...]
    horizon: float
    times: tuple[float, ...]
    example: pd.DataFrame
    output: pd.DataFrame
    save_example: bool

    @classmethod
    def checked(cls, learner, covariates, horizon, times, input_example) -> _Spec:
        covariates = _check_covariates(learner, covariates)
        horizon, times = _check_horizon(horizon), _check_times(times)
        if input_example is None:
            example = pd.DataFrame(0.0, index=[0], columns=list(covariates))
        else:
            example = select_covariates(input_example, covariates)
        model = BenefitModel(learner, covariates=covariates, horizon=horizon, times=times)
        output = model.predict(None, example)
        return cls(learner, covariates, horizon, times, example, output, input_example is not None)

    def config(self) -> dict[str, Any]:
        return {"covariates": list(self.covariates), "horizon": self.horizon,
                "times": list(self.times)}  # fmt: skip


def _save(spec: _Spec, path: Path, mlflow_model: Model) -> None:
    with tempfile.TemporaryDirectory(prefix="stratify-model-") as tmp:
        stored = Path(tmp) / "learner.pkl.xz"
        _write_learner(_compact(spec.learner), stored)
        if not _same_output(stored, spec):
            raise RuntimeError("the stored learner does not reproduce the fitted one's predictions")
        entry = Path(tmp) / "benefit_model.py"
        entry.write_text(ENTRY_POINT, encoding="utf-8")
        with warnings.catch_warnings(), _quiet_copies():
            # Deliberate: without an input example no patient row is written to the model.
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            mlflow.pyfunc.save_model(
                path,
                python_model=str(entry),
                model_config=spec.config(),
                # the stratify modules go with the model as an artifact, not as MLflow
                # code_paths: those go first on sys.path and would shadow an installed stratify
                artifacts={
                    LEARNER_ARTIFACT: str(stored),
                    "code": str(_bundle_code(spec.learner, Path(tmp) / "code").parent),
                },
                # outputs only: MLflow refuses to cast int or bool columns to a declared
                # double input ("Can not safely convert int64 to float64"), yet whole-number
                # ages and 0/1 dummies are what trial files hold; the covariates are in the
                # metadata and predict checks them by name
                signature=ModelSignature(
                    inputs=None, outputs=infer_signature(spec.example, spec.output).outputs
                ),
                input_example=spec.example if spec.save_example else None,
                pip_requirements=[f"{name}=={version(name)}" for name in REQUIREMENTS],
                metadata=_metadata(spec),
                mlflow_model=mlflow_model,
            )


@contextmanager
def _quiet_copies() -> Iterator[None]:
    """No MLflow progress bars while the model's files are copied (one per learner otherwise)."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _same_output(stored: Path, spec: _Spec) -> bool:
    """Whether the learner read back from ``stored`` gives the example's output exactly."""
    model = BenefitModel(read_learner(stored), **spec.config())
    return model.predict(None, spec.example).equals(spec.output)


def _check_covariates(learner, covariates) -> tuple[str, ...]:
    if not isinstance(learner, CATELearner):
        raise StratifyInputError(f"expected a stratify learner, got {type(learner).__name__}")
    try:
        check_is_fitted(learner)
    except NotFittedError:
        raise StratifyInputError(f"{type(learner).__name__} is not fitted") from None
    fitted = [str(c) for c in learner.feature_names_in_]
    given = [str(c) for c in covariates]
    if sorted(given) != sorted(fitted) or len(set(given)) != len(given):
        raise StratifyInputError(
            f"covariates {given} are not the columns the learner was fitted on: {fitted}"
        )
    return tuple(fitted)


def _check_horizon(horizon) -> float:
    try:
        value = float(horizon)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise StratifyInputError(f"horizon must be a positive number of days (got {horizon!r})")
    return value


def _check_times(times) -> tuple[float, ...]:
    try:
        grid = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        grid = np.array([np.nan])
    ok = grid.ndim == 1 and grid.size > 0 and np.isfinite(grid).all() and (grid >= 0).all()
    if not ok or (np.diff(grid) <= 0).any():
        raise StratifyInputError(
            "times must be a non-empty, strictly increasing list of non-negative days "
            f"(got {np.asarray(times, dtype=object).tolist()!r})"
        )
    return tuple(float(t) for t in grid)


def _compact(learner: CATELearner) -> CATELearner:
    """A shallow copy of ``learner`` without fitted attributes that prediction does not use."""
    drop = [a for cls, names in _NOT_SERVED.items() if isinstance(learner, cls) for a in names]
    if not drop:
        return learner
    served = copy.copy(learner)
    for name in drop:
        served.__dict__.pop(name, None)
    return served


def _write_learner(learner: CATELearner, path: Path) -> None:
    # xz preset 1: within 5 % of the default preset's size for stratify's learners
    # (0.31 vs 0.29 MB for the MIROCALS S-learner) at a quarter of its time
    with lzma.open(path, "wb", preset=1) as f:
        cloudpickle.dump(learner, f)


def _learner_name(learner: CATELearner) -> str:
    names = {cls: name for name, cls in LEARNERS.items()}
    return names.get(type(learner), type(learner).__name__)


def _metadata(spec: _Spec) -> dict[str, Any]:
    learner = spec.learner
    curves = "the learner's own survival model"
    if isinstance(learner, DRLearner):
        curves = (
            f"the nuisance T-learner ({learner.nuisance}); cate_rmst and cate_surv come from "
            "the doubly robust regressions, not from these curves"
        )
    return {
        "stratify_version": stratify.__version__,
        "learner": _learner_name(learner),
        "learner_class": type(learner).__name__,
        "learner_params": {k: repr(v) for k, v in learner.get_params(deep=False).items()},
        "covariates": list(spec.covariates),
        "horizon_days": spec.horizon,
        "times_days": list(spec.times),
        "outputs": list(spec.output.columns),
        "survival_curves": curves,
        "units": "days; cate_rmst in days, cate_surv and surv_* as probabilities",
    }


def _bundle_code(learner: CATELearner, folder: Path) -> Path:
    """Copy the stratify modules that unpickling and running ``learner`` import into ``folder``."""
    root = Path(stratify.__file__).parent
    roots = frozenset({"stratify.serving", "stratify.learners", type(learner).__module__})
    for module in _stratify_imports(roots):
        origin = Path(importlib.util.find_spec(module).origin)
        target = folder / "stratify" / origin.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
    return folder / "stratify"


@functools.cache
def _stratify_imports(roots: frozenset[str]) -> frozenset[str]:
    """``roots`` and every stratify module they import at run time, with their packages.

    Cached: the source files of a running stratify do not change, and a run logs
    one model per learner.
    """
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] != "stratify":
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # an attribute (from stratify.x import name), not a module
            spec = None
        if spec is None or spec.origin is None:
            continue
        seen.add(name)
        todo.append(name.rpartition(".")[0])
        package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        todo.extend(_imported_names([tree], package))
    return frozenset(seen)


def _imported_names(nodes, package: str) -> Iterator[str]:
    """Modules (and ``module.name`` candidates) imported in ``nodes``, not under TYPE_CHECKING."""
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _imported_names(node.orelse, package)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        else:
            yield from _imported_names(ast.iter_child_nodes(node), package)
