"""Reading configs: YAML (safe, duplicate keys refused), dotted overrides, and errors that
name the key and the closest valid one.

Relative paths in a config (``data.path``, a folder ``tracking.uri``) resolve
against the *project root* of the config file: the nearest folder at or above
it that holds a ``pyproject.toml`` or ``.git``, else the config file's own
folder. So ``stratify run configs/mirocals.yaml`` writes to ``./mlruns/`` of
the project wherever it is started from.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stratify.config.schema import ExperimentConfig
from stratify.exceptions import StratifyInputError


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
        if part.isdigit():  # an item of a list: same model
            continue
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
