"""Experiment configs: the typed schema, YAML loading and dotted ``key=value`` overrides.

This module owns what a config may say and how it is read. Configs are plain
data: they are parsed with :func:`yaml.safe_load`, validated by frozen pydantic
models that forbid unknown keys, and never name code to import or run.

Relative paths in a config (``data.path``, a folder ``tracking.uri``) resolve
against the *project root* of the config file: the nearest folder at or above
it that holds a ``pyproject.toml`` or ``.git``, else the config file's own
folder. So ``stratify run configs/mirocals.yaml`` writes to ``./mlruns/`` of
the project wherever it is started from.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stratify.exceptions import StratifyInputError


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
    seed: int | None = Field(None, description="Seed of the simulated trial; default: `seed`.")
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


class ExperimentConfig(_Frozen):
    """One experiment: which trial, which horizon, where to track it."""

    name: str = Field(
        ..., min_length=1, pattern=r"^[A-Za-z0-9_.\- ]+$", description="Experiment name."
    )
    seed: int = Field(0, description="Seed for everything random in the run.")
    horizon: float = Field(..., gt=0, description="Time horizon for survival and RMST (days).")
    data: DataConfig
    tracking: TrackingConfig = TrackingConfig()
    base_dir: Path = Field(
        default_factory=Path.cwd,
        exclude=True,
        description="Folder that relative paths resolve against (set by the loader).",
    )

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
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 12 hex digits) of what the analysis depends on.

        ``tracking`` is left out: the same analysis logged to two stores has one hash.
        """
        analysis = {k: v for k, v in self.to_dict().items() if k != "tracking"}
        blob = json.dumps(analysis, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def flat_params(self) -> dict[str, str]:
        """Dotted ``key: value`` pairs, for MLflow params (lists comma-joined)."""
        return {k: _param_str(v) for k, v in _flatten(self.to_dict()).items()}


def project_root(path: Path) -> Path:
    """Nearest folder at or above ``path`` holding ``pyproject.toml`` or ``.git``.

    Falls back to the folder of ``path`` itself.
    """
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return start


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a YAML config, apply ``key=value`` overrides and validate it.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    overrides : list of str
        Dotted overrides such as ``data.simulate.n=400`` or ``seed=3``; values
        are parsed as YAML scalars or lists (``null`` removes a setting).

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    StratifyInputError
        The file cannot be read, is not YAML, or fails validation; the message
        names the key and, for unknown keys, the closest valid one.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StratifyInputError(f"config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StratifyInputError(f"config file {path}: not UTF-8 text") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise StratifyInputError(f"config file {path}: not valid YAML{where}{detail}") from None
    if not isinstance(raw, dict):
        raise StratifyInputError(f"config file {path}: expected a mapping of keys to values")
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, base_dir=project_root(path), source=str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set a dotted ``key=value`` in a raw config mapping, in place.

    Examples
    --------
    >>> raw = {"data": {"simulate": {"n": 220}}}
    >>> apply_override(raw, "data.simulate.n=400")
    >>> raw["data"]["simulate"]["n"]
    400
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise StratifyInputError(f"override {item!r}: expected key=value, e.g. seed=3")
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise StratifyInputError(f"override {item!r}: '{where}' is not a section")
        node = child
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise StratifyInputError(f"override {item!r}: value is not valid YAML") from None
    if parsed is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = parsed


def validate_config(
    raw: dict[str, Any], *, base_dir: Path | None = None, source: str = "config"
) -> ExperimentConfig:
    """Validate a raw mapping into an :class:`ExperimentConfig`.

    Raises
    ------
    StratifyInputError
        Naming the first offending key, with the closest valid key when the
        key is unknown.
    """
    if "base_dir" in raw:
        raise StratifyInputError(f"{source}: unknown key 'base_dir'")
    try:
        return ExperimentConfig(**raw, base_dir=base_dir or Path.cwd())
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise StratifyInputError(f"{source}: {_describe(errors[0])}") from None
    except TypeError as exc:  # non-string keys at the top level
        raise StratifyInputError(f"{source}: {exc}") from None


def _describe(error: dict[str, Any]) -> str:
    loc, union_branch = _field_path(error["loc"])
    key = ".".join(loc) or "config"
    if union_branch:
        return f"{key}: not a valid value of this field (got {error.get('input')!r})"
    if error["type"] == "extra_forbidden":
        hint = _closest(loc)
        return f"unknown key '{key}'" + (f"; did you mean '{hint}'?" if hint else "")
    if error["type"] == "missing":
        return f"'{key}' is required"
    message = re.sub(r" or instance of \w+", "", error["msg"].removeprefix("Value error, "))
    if key == "config" or error["type"] == "value_error":
        return message if key in ("config", "data") else f"{key}: {message}"
    return f"{key}: {message} (got {error.get('input')!r})"


def _field_path(loc: tuple) -> tuple[list[str], bool]:
    """The dotted path of real fields in a pydantic error location.

    Pydantic adds the type tried in a union (``data.treated.int``) and validator
    names to the location; those are dropped, and reported as a union mismatch.
    """
    model: type[BaseModel] | None = ExperimentConfig
    path: list[str] = []
    for part in loc:
        if isinstance(part, int):
            path.append(str(part))
            continue
        if model is not None and part in model.model_fields:
            path.append(part)
            model = _submodel(model.model_fields[part].annotation)
            continue
        if model is None and not str(part).startswith("function-"):
            return path, True
        if model is not None and len(path) + 1 == len(loc):
            path.append(part)  # an unknown key: keep it for the message
    return path, False


def _closest(loc: list[str]) -> str | None:
    """The valid dotted key nearest to an unknown one."""
    model: type[BaseModel] | None = ExperimentConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model else None
        model = _submodel(field.annotation) if field else None
    if model is None:
        return None
    names = [n for n in model.model_fields if n != "base_dir"]
    match = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.5)
    return ".".join([*loc[:-1], match[0]]) if match else None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", (annotation,))
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


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
