"""The experiment schema: what a config may say, as frozen pydantic models.

Every field has a description; unknown keys are refused. Derived values
(resolved paths, the tracking URI, the config hash) are properties, never fields
filled in later. Relative paths resolve against ``base_dir``, which the loader
sets to the config's project root (see :mod:`stratify.config.loader`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Largest seed: numpy's legacy generators and scikit-learn take seeds in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1


def is_local_folder(uri: str) -> bool:
    """True for a folder path (the embedded store); False for a URI with a scheme.

    A one-letter scheme is a Windows drive (``C:\\runs``), hence a folder;
    ``file:`` URIs name folders too.
    """
    scheme = urlparse(uri).scheme
    return len(scheme) <= 1 or scheme == "file"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulateConfig(_Frozen):
    """A simulated trial from a built-in design."""

    design: Literal["mirocals"] = Field(
        "mirocals", description="Simulator design (see stratify.data.simulate.DESIGNS)."
    )
    n: int = Field(220, ge=20, description="Number of randomised patients.")
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Seed of the simulated trial; default: `seed`."
    )
    effect: Literal["mirocals", "none", "common"] = Field(
        "mirocals",
        description="Treatment effect: the calibrated pNFH-dependent one, none, or one common HR.",
    )
    dropout: float = Field(
        0.0, ge=0.0, le=0.02, description="Probability of early dropout (random censoring)."
    )


class DataConfig(_Frozen):
    """Where the trial comes from and what its columns mean."""

    path: str | None = Field(None, description="CSV or Parquet file, one row per patient.")
    dataset: Literal["gbsg2"] | None = Field(
        None, description="A public trial bundled with scikit-survival."
    )
    simulate: SimulateConfig | None = Field(None, description="Simulate a trial instead.")
    time: str = Field("time", description="Follow-up time column (days).")
    event: str = Field("event", description="Event column: 1 = event (death), 0 = censored.")
    arm: str = Field("arm", description="Randomised arm column (two values).")
    treated: int | float | str | bool | None = Field(
        None,
        description="Label of the treated arm; may be omitted when the arm is coded 0/1 "
        "(1 = treated). Quote labels such as 'yes' (YAML reads yes/no as booleans).",
    )
    covariates: list[str] | None = Field(
        None, description="Baseline covariates; default: every other column."
    )
    modifier: str | None = Field(None, description="Biomarker of interest (e.g. csf_pnfh).")
    cutpoints: list[float] | None = Field(
        None, description="Cut-points of the modifier defining strata, increasing."
    )
    log_transform: list[str] = Field(
        [], description="Covariates analysed on the natural-log scale (as log_<name>)."
    )
    id: str | None = Field(None, description="Column identifying patients; default: row number.")
    missing: Literal["error", "complete_case"] = Field(
        "error",
        description="Missing covariate values: stop with an error, or exclude those patients "
        "(reported as excluded).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [k for k in ("path", "dataset", "simulate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of data.path, data.dataset, data.simulate"
                + (f" (got {', '.join('data.' + g for g in given)})" if given else "")
            )
        if self.cutpoints is not None:
            if self.modifier is None:
                raise ValueError("data.cutpoints needs data.modifier")
            if not self.cutpoints or not all(math.isfinite(c) for c in self.cutpoints):
                raise ValueError("data.cutpoints must be one or more finite numbers")
            if any(b <= a for a, b in zip(self.cutpoints, self.cutpoints[1:], strict=False)):
                raise ValueError("data.cutpoints must be strictly increasing")
        return self


class TrackingConfig(_Frozen):
    """Where runs are recorded."""

    uri: str = Field(
        "mlruns",
        description="A folder (an embedded SQLite store is created in it) or any MLflow "
        "tracking URI (sqlite:///..., http://...).",
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: `name`.")
    log_patient_level: bool = Field(
        False, description="Log patient-level tables. Off by default: trial data are sensitive."
    )
    log_models: bool = Field(
        False,
        description="Log each learner, fitted on the whole trial, as an MLflow pyfunc model "
        "that serves benefit. Off by default: a fitted forest's split points and leaf curves "
        "derive from individual patients, so models go to the store only when asked for.",
    )

    @field_validator("uri", "experiment")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", value):
            raise ValueError("must not contain line breaks or other control characters")
        return value

    @field_validator("uri")
    @classmethod
    def _home_folder_exists(cls, value: str) -> str:
        path = value.removeprefix("sqlite:///") if value.startswith("sqlite:///") else value
        if path.startswith("~") and (path != value or is_local_folder(value)):
            try:
                Path(path).expanduser()
            except RuntimeError:  # ~name of a user this machine does not know
                user = path.split("/")[0]
                raise ValueError(f"cannot find the home folder of '{user}'") from None
        return value


class LearnerSpec(_Frozen):
    """One treatment-effect learner, by registry name (never an import path)."""

    name: str = Field(..., description="Learner name from stratify.learners.LEARNERS.")
    label: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.\-]+$", description="Name of its nested run; default: name."
    )
    params: dict[str, Any] = Field({}, description="Parameters of the learner (its docstring).")

    @field_validator("params")
    @classmethod
    def _plain_data(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Parameters are numbers, text, true/false, null, or lists and mappings of them.

        YAML can also build bytes (``!!binary``), sets and dates, which the run could not
        record (the config hash and MLflow params are JSON).
        """
        stack = [(str(k), v) for k, v in value.items()]
        while stack:
            key, item = stack.pop()
            if isinstance(item, dict):
                stack.extend((f"{key}.{k}", v) for k, v in item.items())
            elif isinstance(item, list):
                stack.extend((f"{key}.{i}", v) for i, v in enumerate(item))
            elif item is not None and not isinstance(item, bool | int | float | str):
                raise ValueError(
                    f"'{key}' must be a number, text, true/false, null, or a list or mapping "
                    f"of them (got {type(item).__name__})"
                )
        return value

    @property
    def run_label(self) -> str:
        """The label that names this learner's nested run and metrics."""
        return self.label or self.name


class CVConfig(_Frozen):
    """Repeated stratified K-fold cross-fitting (strata: arm × event)."""

    folds: int = Field(5, ge=2, le=20, description="Folds per repeat.")
    repeats: int = Field(10, ge=1, le=200, description="Repeats with fresh splits.")


class HeterogeneityConfig(_Frozen):
    """How the heterogeneity verdict of a run is reached."""

    primary: str | None = Field(
        None,
        description="Label of a pre-specified learner whose test is the verdict; default: "
        "Holm (Bonferroni for the smallest p) over all learners.",
    )
    test: Literal["rate", "blp"] = Field(
        "blp",
        description="Test per learner: 'blp' (calibration slope for heterogeneity > 0, HC3 SE; "
        "the default: same level, more power in BENCHMARKS.md) or 'rate' (RATE AUTOC > 0, "
        "bootstrap SE); both are always logged.",
    )
    n_bootstrap: int = Field(200, ge=50, le=10000, description="Bootstrap replicates for RATE.")


class ExplainConfig(_Frozen):
    """SHAP of each learner's benefit and the analysis of the modifier (runs with learners)."""

    enabled: bool = Field(True, description="Explain benefit (needs learners).")
    background: int = Field(
        0,
        ge=0,
        le=2000,
        description="Reference patients (drawn with the seed) for interventional SHAP; 0 (the "
        "default): tree-path-dependent SHAP for tree learners, 50 for model-agnostic ones.",
    )
    learner: str | None = Field(
        None,
        description="Learner whose SHAP ranks the modifier on the parent run; default: "
        "heterogeneity.primary, else the first learner.",
    )
    max_evals: int = Field(
        500, ge=10, le=100000, description="Permutation SHAP budget per patient (> 10 covariates)."
    )
    n_bootstrap: int = Field(
        200, ge=20, le=10000, description="Bootstrap replicates of the modifier crossover."
    )
    times: int = Field(
        10, ge=2, le=100, description="Time points up to the horizon for time-dependent SHAP."
    )
    max_patients: int | None = Field(
        None,
        ge=1,
        description="Explain a random sample (drawn with the seed) of at most this many "
        "patients; default: all. About 5,000 estimate a large cohort's importances within a "
        "few per cent (BENCHMARKS.md, Large cohorts); S-learner arm interactions use at most "
        "500 of them.",
    )


class ExecutionConfig(_Frozen):
    """Where the cross-fitting and the explanations run. Results do not depend on it."""

    backend: Literal["local", "dask"] = Field(
        "local",
        description="local: joblib worker processes on this machine; dask: a Dask cluster "
        "(execution.address, or a LocalCluster of n_jobs worker processes).",
    )
    n_jobs: int = Field(1, ge=-1, description="Worker processes; -1 = all cores (not 0).")
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls)://[^\s/]+:\d+$",
        description="Dask scheduler, e.g. tcp://scheduler:8786 (backend: dask); "
        "default: a LocalCluster on this machine.",
    )

    @field_validator("n_jobs")
    @classmethod
    def _some_workers(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 workers cannot run anything; use 1, 2, ... or -1 (all cores)")
        return value

    @model_validator(mode="after")
    def _address_needs_dask(self) -> ExecutionConfig:
        if self.address is not None and self.backend != "dask":
            raise ValueError("execution.address is for backend: dask")
        return self


class StudyConfig(_Frozen):
    """A simulation study: the config's analysis over many simulated trials (``stratify study``)."""

    replicates: int = Field(
        100, ge=1, le=1_000_000, description="Simulated trials; raise it to extend a study."
    )
    first_seed: int = Field(
        10_000,
        ge=0,
        le=MAX_SEED,
        description="Replicate i is the config run with seed first_seed + i (trial and analysis).",
    )
    learners: bool = Field(
        False,
        description="Also cross-fit the config's learners in every replicate and record each "
        "learner's heterogeneity p (costly: folds x repeats fits per learner per trial).",
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Level at which rejection rates (power) are reported."
    )


class ExperimentConfig(_Frozen):
    """One experiment: which trial, which horizon, where to track it."""

    name: str = Field(
        ..., min_length=1, pattern=r"^[A-Za-z0-9_.\- ]+$", description="Experiment name."
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for everything random in the run.")
    horizon: float = Field(
        ..., gt=0, allow_inf_nan=False, description="Time horizon for survival and RMST (days)."
    )
    data: DataConfig
    learners: list[LearnerSpec] = Field([], description="Treatment-effect learners to cross-fit.")
    cv: CVConfig = CVConfig()
    heterogeneity: HeterogeneityConfig = HeterogeneityConfig()
    explain: ExplainConfig = ExplainConfig()
    execution: ExecutionConfig = ExecutionConfig()
    tracking: TrackingConfig = TrackingConfig()
    study: StudyConfig | None = Field(
        None, description="Simulation study settings (stratify study); runs ignore them."
    )
    base_dir: Path = Field(
        default_factory=Path.cwd,
        exclude=True,
        description="Folder that relative paths resolve against (set by the loader).",
    )

    @field_validator("learners", mode="before")
    @classmethod
    def _names_as_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _labels(self) -> ExperimentConfig:
        labels = [spec.run_label for spec in self.learners]
        dup = next((lb for lb in labels if labels.count(lb) > 1), None)
        if dup is not None:
            raise ValueError(f"learners: '{dup}' appears twice; give one of them a label")
        primary = self.heterogeneity.primary
        if primary is not None and primary not in labels:
            raise ValueError(
                f"heterogeneity.primary: '{primary}' is not a learner of this config "
                f"(learners: {', '.join(labels) or 'none'})"
            )
        explained = self.explain.learner
        if labels and explained is not None and explained not in labels:
            raise ValueError(
                f"explain.learner: '{explained}' is not a learner of this config "
                f"(learners: {', '.join(labels) or 'none'})"
            )
        return self

    @property
    def explained_learner(self) -> str | None:
        """Label of the learner whose modifier rank goes on the parent run."""
        if not self.learners:
            return None
        first = self.learners[0].run_label
        return self.explain.learner or self.heterogeneity.primary or first

    @property
    def curve_times(self) -> np.ndarray:
        """The days at which survival is explained over time and served: ``explain.times``
        equal steps up to the horizon (the horizon itself last)."""
        k = self.explain.times
        return np.linspace(self.horizon / k, self.horizon, k)

    @property
    def data_path(self) -> Path | None:
        """``data.path`` resolved against the project root."""
        return None if self.data.path is None else self.base_dir / self.data.path

    @property
    def tracking_uri(self) -> str:
        """``tracking.uri`` with local paths (a folder, an SQLite file) made absolute."""
        uri = self.tracking.uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            path = Path(uri.removeprefix("sqlite:///")).expanduser()
            return f"sqlite:///{(self.base_dir / path).resolve()}"
        if not is_local_folder(uri):
            return uri
        if uri.startswith("file:"):
            uri = urlparse(uri).path
        return str((self.base_dir / Path(uri).expanduser()).resolve())

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment: ``tracking.experiment`` or ``name``."""
        return self.tracking.experiment or self.name

    @property
    def simulation_seed(self) -> int:
        """Seed of the simulated trial: ``data.simulate.seed`` or ``seed``."""
        sim = self.data.simulate
        return self.seed if sim is None or sim.seed is None else sim.seed

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (paths as written, relative to the project root)."""
        tree = self.model_dump(mode="json")
        if tree.get("study") is None:
            tree.pop("study", None)
        return tree

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 12 hex digits) of what the analysis depends on.

        ``tracking``, ``execution`` and ``study`` are left out: the same analysis logged
        to two stores, or run with more workers, or as part of a study, has one hash.
        """
        skip = ("tracking", "execution", "study")
        analysis = {k: v for k, v in self.to_dict().items() if k not in skip}
        blob = json.dumps(analysis, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def flat_params(self) -> dict[str, str]:
        """Dotted ``key: value`` pairs, for MLflow params (lists comma-joined).

        Learners appear as ``learners`` (their labels) and ``learners.<label>.<param>``.
        """
        tree = self.to_dict()
        tree["learners"] = [spec.run_label for spec in self.learners]
        for spec in self.learners:
            for key, value in spec.params.items():
                tree[f"learners.{spec.run_label}.{key}"] = value
        return {k: _param_str(v) for k, v in _flatten(tree).items()}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _param_str(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "null" if value is None else str(value)
