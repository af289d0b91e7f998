"""Reading configs: YAML (safe, duplicate keys refused), dotted overrides, and errors that
name the key and the closest valid one.

Relative paths in a config (``data.path``, a folder ``tracking.uri``) resolve
against the *project root* of the config file: the nearest folder at or above
it that holds a ``pyproject.toml`` or ``.git``, else the config file's own
folder. So ``stratify run configs/mirocals.yaml`` writes to ``./mlruns/`` of
the project wherever it is started from.

Every error is one :class:`StratifyInputError` line: values and keys quoted in it
are cut when long and line breaks in them are escaped, and a config nested too
deeply or too large (YAML aliases that refer to themselves or expand without
end) is refused before validation.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stratify.config.schema import ExperimentConfig
from stratify.exceptions import StratifyInputError, cut, one_line_errors, show

#: Deepest nesting of mappings and lists a config may have.
MAX_DEPTH = 32
#: Most values (keys, items, scalars) a config may hold.
MAX_VALUES = 100_000


def project_root(path: Path) -> Path:
    """Nearest folder at or above ``path`` holding ``pyproject.toml`` or ``.git``.

    Falls back to the folder of ``path`` itself.
    """
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return start


@one_line_errors
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
    except ValueError as exc:  # a NUL byte in the name
        raise StratifyInputError(f"config file {path}: {exc}") from None
    raw = _parse_yaml(text, f"config file {path}")
    if not isinstance(raw, dict):
        raise StratifyInputError(f"config file {path}: expected a mapping of keys to values")
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, base_dir=project_root(path), source=str(path))


def _parse_yaml(text: str, what: str) -> Any:
    """YAML text as plain data, or a one-line error starting with ``what``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise StratifyInputError(f"{what}: not valid YAML{where}{detail}") from None
    except RecursionError:
        raise StratifyInputError(f"{what}: not valid YAML: nested too deeply") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, or a list as a key."""

    def construct_object(self, node, deep=False):
        """A value; one YAML cannot build (a date 2024-13-01, 5,000 digits) is an error."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if "integer string conversion" in reason:
                reason = "a number with more than 4300 digits"
            problem = f"cannot read {show(node.value)}" + (f" ({cut(reason)})" if reason else "")
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key cannot be a list or a mapping", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@one_line_errors
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
        raise StratifyInputError(f"override {show(item)}: expected key=value, e.g. seed=3")
    parts = key.strip().split(".")
    if not all(parts):
        raise StratifyInputError(f"override {show(item)}: empty name in the key '{cut(key)}'")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise StratifyInputError(f"override {show(item)}: '{cut(where)}' is not a section")
        node = child
    parsed = _parse_yaml(value, f"override {show(item)}: value")
    if parsed is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = parsed


@one_line_errors
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
    if not isinstance(raw, dict):
        raise StratifyInputError(f"{source}: expected a mapping of keys to values")
    bad_keys = [k for k in raw if not isinstance(k, str)]
    if bad_keys:
        raise StratifyInputError(f"{source}: key {show(bad_keys[0])} is not a name (keys are text)")
    if "base_dir" in raw:
        raise StratifyInputError(f"{source}: unknown key 'base_dir'")
    _check_size(raw, source)
    try:
        return ExperimentConfig(**raw, base_dir=base_dir or Path.cwd())
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise StratifyInputError(f"{source}: {_describe(errors[0])}") from None


def _check_size(raw: dict[str, Any], source: str) -> None:
    """Refuse a config nested more than :data:`MAX_DEPTH` deep or holding over :data:`MAX_VALUES`.

    YAML aliases can make a structure that refers to itself (``a: &x [*x]``) or
    that expands exponentially; both are caught here, without recursion.
    """
    stack: list[tuple[tuple, Any]] = [((), raw)]
    count = 0
    while stack:
        path, node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise StratifyInputError(
                f"{source}: more than {MAX_VALUES} values (YAML aliases expanding?)"
            )
        if len(path) > MAX_DEPTH:
            where = ".".join(cut(str(p)) for p in path[:4])
            raise StratifyInputError(
                f"{source}: {where}: nested more than {MAX_DEPTH} levels deep "
                "(or a YAML alias that refers to itself)"
            )
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))


def _describe(error: dict[str, Any]) -> str:
    raw_loc = tuple(error["loc"])
    if error["type"] == "invalid_key" or "[key]" in raw_loc:
        # a key that is not text: pydantic puts it last, or before "[key]" for dict fields
        parent = raw_loc[: raw_loc.index("[key]") - 1] if "[key]" in raw_loc else raw_loc[:-1]
        where = ".".join(_field_path(parent)[0]) or "config"
        return f"{where}: key {show(error.get('input'))} is not a name (keys are text)"
    loc, union_branch = _field_path(raw_loc)
    key = ".".join(cut(part) for part in loc) or "config"
    got = show(error.get("input"))
    if union_branch:
        return f"{key}: not a valid value of this field (got {got})"
    if error["type"] == "extra_forbidden":
        hint = _closest(loc)
        return f"unknown key '{key}'" + (f"; did you mean '{hint}'?" if hint else "")
    if error["type"] == "missing":
        return f"'{key}' is required"
    message = re.sub(r" or instance of \w+", "", error["msg"].removeprefix("Value error, "))
    if key == "config" or error["type"] == "value_error":
        return message if key in ("config", "data") else f"{key}: {message}"
    return f"{key}: {message} (got {got})"


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
            path.append(str(part))  # an unknown key: keep it for the message
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
