"""Property-based tests: bad configs, tables and files give one line naming the field, never a
traceback (issue #6, the bad-input half of the fault suite).

Every property has the same shape: whatever the input, the config parser, the table checks
(``TrialData.from_frame``) and the file reader either return a valid object or raise
:class:`StratifyInputError` whose message is one printable line that names the field, column
or file; any other exception fails the test with the shrunk input. The runs are deterministic
(``derandomize=True``) and write no example database.

Each bug the properties found has a plain regression test at the end of this file, with the
shrunk example.
"""

import csv
import gzip
import io
import json
import math
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import configuration as hypothesis_configuration
from hypothesis import strategies as st

from kit import ROOT
from stratify.config import ExperimentConfig, apply_override, load_config, validate_config
from stratify.data import TrialData
from stratify.data.io import read_table
from stratify.exceptions import StratifyInputError

# Hypothesis's caches (Unicode tables, literals) go to a temporary folder, not the repository.
hypothesis_configuration.set_hypothesis_home_dir(
    Path(tempfile.gettempdir()) / "stratify-hypothesis"
)

CONFIGS = {name: ROOT / "configs" / f"{name}.yaml" for name in ("mirocals", "gbsg2")}
RAW_CONFIGS = {name: yaml.safe_load(path.read_text()) for name, path in CONFIGS.items()}


def fuzz(max_examples: int) -> settings:
    """Deterministic, database-free settings sized for a loaded two-core machine."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def check_message(exc: StratifyInputError) -> str:
    """The error's message, asserted to be one non-empty printable line."""
    message = str(exc)
    assert message, "empty message"
    assert len(message.splitlines()) == 1, message
    assert message.isprintable(), message
    assert message == message.strip(), message
    return message


def shown(name: object) -> str:
    """A name as messages quote it: unprintable characters escaped (long names are cut)."""
    text = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(name)
    )
    return text[:40]


# --- values -----------------------------------------------------------------------------------

huge_ints = st.integers(min_value=2**63 - 5, max_value=2**70) | st.integers(-(2**70), -(2**63))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(),  # NaN, inf and subnormals included
    st.text(max_size=12),
    st.sampled_from(["", " ", "\n", "nan", "inf", "-1", "1e999", "yes", "no", "0x1F", "~", "é"]),
    st.sampled_from(["~nosuchuser/x", "sqlite:///~nosuchuser/x.db", "tcp://h:1", "s_learner"]),
    st.binary(max_size=3),
    st.dates(),
    st.sets(st.integers(0, 3), max_size=2),
)
keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["name", "seed", "data", "path", "n", "learners", "params", "a\nb", "ü"]),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int, leaf: object = 1) -> object:
    """A value nested ``depth`` levels deep (alternating lists and mappings)."""
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"x": leaf}
    return leaf


# --- config parser ----------------------------------------------------------------------------


def config_outcome(call) -> ExperimentConfig | str:
    """The config, or the one-line message; any other exception fails the test."""
    try:
        config = call()
    except StratifyInputError as exc:
        return check_message(exc)
    assert isinstance(config, ExperimentConfig)
    assert math.isfinite(config.horizon) and config.horizon > 0
    assert 0 <= config.seed < 2**32
    # what a run derives from the config must not raise either
    assert config.to_yaml() and config.config_hash and config.flat_params()
    assert config.tracking_uri and config.experiment_name
    return config


def paths(tree: object, prefix: tuple = ()) -> list[tuple]:
    """Every dotted path of a raw config (mappings and lists), the root excluded."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, dict | list):
            out.extend(paths(value, (*prefix, key)))
    return out


def _copy(tree: object) -> object:
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_copy(v) for v in tree]
    return tree


MUTATIONS = ("drop", "replace", "unknown key", "deep", "wrong container")


@st.composite
def mutated_configs(draw) -> tuple[dict, tuple, str]:
    """A shipped config with one key dropped or one value replaced by junk."""
    raw = _copy(RAW_CONFIGS[draw(st.sampled_from(sorted(RAW_CONFIGS)))])
    path = draw(st.sampled_from(paths(raw)))
    kind = draw(st.sampled_from(MUTATIONS))
    parent = raw
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "drop":
        del parent[last]
    elif kind == "replace":
        parent[last] = draw(junk)
    elif kind == "unknown key":
        new = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
        if isinstance(parent[last], dict):
            parent, path = parent[last], (*path, new)
        else:
            assume(isinstance(parent, dict))
            path = (*path[:-1], new)
        assume(new not in parent)
        parent[new] = draw(junk)
    elif kind == "deep":
        parent[last] = deep(draw(st.integers(1, 60)))
    else:
        value = parent[last]
        parent[last] = [value] if isinstance(value, dict) else {"value": value}
    return raw, path, kind


def names_the_path(message: str, path: tuple) -> bool:
    """The message names the mutated key, one of its sections, or the list it is in."""
    dotted = [".".join(map(str, path[: i + 1])) for i in range(len(path))]
    return any(d in message for d in dotted)


@fuzz(400)
@given(mutated_configs())
def test_mutated_shipped_configs_are_valid_or_name_the_key(case):
    raw, path, kind = case
    result = config_outcome(lambda: validate_config(raw))
    if isinstance(result, str):
        assert names_the_path(result, path), (path, kind, result)


@fuzz(150)
@given(mutated_configs())
def test_mutated_config_files_give_the_same_answer(tmp_path_factory, case):
    """Through YAML text and load_config: the file's answer is the mapping's."""
    raw, _, _ = case
    path = tmp_path_factory.getbasetemp() / "mutated.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    direct, loaded = (
        config_outcome(lambda: validate_config(raw)),
        config_outcome(lambda: load_config(path)),
    )
    if isinstance(direct, str):
        assert isinstance(loaded, str) and direct.split(": ", 1)[1] in loaded
    else:
        assert not isinstance(loaded, str), loaded


yaml_texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from(list("{}[]:,-?&*!|>'\"%@`#\n\t ab01.~")), max_size=80),
    junk.map(lambda v: yaml.safe_dump(v, allow_unicode=True, sort_keys=False)),
    st.builds(
        lambda text, cut: text[:cut],
        st.sampled_from([p.read_text() for p in CONFIGS.values()]),
        st.integers(0, 3000),
    ),
    st.sampled_from(
        [
            "x: &a [*a]\n",
            "a: &a [1, 2]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
            "[" * 600 + "]" * 600,
            "seed: " + "9" * 5000 + "\n",
            "name: x\nhorizon: 2024-13-01\n",
            "? [a, b]\n: 1\n",
            "!!python/object/apply:os.system ['true']\n",
            "\ufeffname: x\n",
            "\x00",
        ]
    ),
)


@fuzz(300)
@given(yaml_texts)
def test_arbitrary_yaml_text_never_gives_a_traceback(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "arbitrary.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    config_outcome(lambda: load_config(path))


@fuzz(200)
@given(st.dictionaries(keys, junk, max_size=6) | junk)
def test_arbitrary_mappings_never_give_a_traceback(raw):
    config_outcome(lambda: validate_config(raw))


dotted_keys = st.one_of(
    st.text(max_size=20),
    st.lists(
        st.sampled_from(sorted({str(p[-1]) for p in paths(RAW_CONFIGS["mirocals"])})),
        min_size=1,
        max_size=4,
    ).map(".".join),
    st.lists(st.from_regex(r"[a-z_0-9]{0,8}", fullmatch=True), min_size=1, max_size=4).map(
        ".".join
    ),
)
override_values = st.one_of(
    st.text(max_size=30),
    junk.map(lambda v: yaml.safe_dump(v, default_flow_style=True, sort_keys=False).strip()),
    st.sampled_from(["null", "~", "[", "{a: 1", "&a [*a]", "9" * 5000, "2024-13-01", "!!binary x"]),
)


@fuzz(300)
@given(
    st.lists(
        st.one_of(st.text(max_size=40), st.builds("{}={}".format, dotted_keys, override_values)),
        max_size=3,
    )
)
def test_arbitrary_overrides_never_give_a_traceback(overrides):
    config_outcome(lambda: load_config(CONFIGS["mirocals"], overrides))


@fuzz(200)
@given(
    st.sampled_from(sorted({".".join(map(str, p)) for p in paths(RAW_CONFIGS["mirocals"])})),
    override_values,
)
def test_an_override_that_fails_names_its_key(key, value):
    result = config_outcome(lambda: load_config(CONFIGS["mirocals"], [f"{key}={value}"]))
    if isinstance(result, str):
        assert names_the_path(result, tuple(key.split("."))) or "explain.learner" in result, result


# --- data columns -----------------------------------------------------------------------------

odd_objects = st.one_of(
    scalars,
    st.binary(max_size=4),
    st.complex_numbers(max_magnitude=10),
    st.decimals(allow_nan=False),
    st.just(Decimal("NaN")),  # a signalling NaN (sNaN) breaks pandas itself: not generated
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(0, 1), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.integers(min_value=10**30, max_value=10**400),
)


def _as(values: list, dtype: str) -> pd.Series:
    try:
        return pd.Series(pd.array(values, dtype=dtype))
    except (TypeError, ValueError, OverflowError):
        return pd.Series(values, dtype=object)


@st.composite
def cells(draw, n: int, good: st.SearchStrategy) -> pd.Series:
    """A column of ``n`` cells: usually valid (``good``), otherwise of any dtype and content."""
    kind = draw(st.sampled_from(["good"] * 4 + ["floats", "ints", "objects", "text", "dtype"]))
    if kind == "good":
        return pd.Series(draw(st.lists(good, min_size=n, max_size=n)))
    if kind == "floats":
        return pd.Series(draw(st.lists(st.floats(), min_size=n, max_size=n)), dtype=float)
    if kind == "ints":
        ints = st.integers(-(2**63), 2**63 - 1)
        return pd.Series(draw(st.lists(ints, min_size=n, max_size=n)), dtype="int64")
    if kind == "objects":
        return pd.Series(draw(st.lists(odd_objects, min_size=n, max_size=n)), dtype=object)
    if kind == "text":
        words = st.sampled_from(["1", "0", " 5", "1e3", "nan", ".", "NA", "a", "", "-2", "1,5"])
        return pd.Series(draw(st.lists(words, min_size=n, max_size=n)), dtype=object)
    values = draw(st.lists(good, min_size=n, max_size=n))
    dtype = draw(
        st.sampled_from(["Int64", "Float64", "boolean", "string", "category", "float32"])
        | st.sampled_from(["uint64", "complex", "datetime64[ns]"])
    )
    if dtype == "category":
        return pd.Series(pd.Categorical(values))
    if dtype == "datetime64[ns]":
        return pd.Series(pd.to_datetime(values, unit="D", errors="coerce"))
    return _as(values, dtype)


time_cells = st.floats(0.5, 2000) | st.integers(1, 2000)
event_cells = st.sampled_from([0, 1, 1, True, False, 1.0])
arm_cells = st.sampled_from([0, 1])
covariate_cells = st.one_of(
    st.floats(-100, 100), st.integers(-5, 5), st.sampled_from(["a", "b", "c"]), st.none()
)
odd_names = st.one_of(
    st.text(max_size=6), st.sampled_from(["a\nb", "x" * 200, "Unnamed: 0", "arm", "\ufefftime"])
)


@st.composite
def trial_frames(draw) -> tuple[pd.DataFrame, dict]:
    """A table and config-like arguments of ``TrialData.from_frame``, either maybe bad."""
    n = draw(st.integers(0, 10))
    names = {"time": "time", "event": "event", "arm": "arm"}
    if draw(st.integers(0, 9)) == 0:
        names[draw(st.sampled_from(sorted(names)))] = draw(odd_names)
    goods = {"time": time_cells, "event": event_cells, "arm": arm_cells}
    columns = [(names[role], draw(cells(n, goods[role]))) for role in ("time", "event", "arm")]
    for i in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([f"x{i}", "age", "stage"]) | odd_names)
        columns.append((name, draw(cells(n, covariate_cells))))
    if draw(st.integers(0, 9)) == 0:  # a duplicated column
        columns.append(draw(st.sampled_from(columns)))
    if columns and draw(st.integers(0, 9)) == 0:  # a missing column
        columns.pop(draw(st.integers(0, len(columns) - 1)))
    frame = pd.DataFrame(index=range(n))
    if columns:
        frame = pd.concat([s.reset_index(drop=True) for _, s in columns], axis=1)
        frame.columns = pd.Index([c for c, _ in columns], dtype=object)
    present = [c for c in frame.columns if isinstance(c, str)]
    some = st.sampled_from([*present, "ghost"])
    kwargs = dict(
        names,
        treated=draw(st.sampled_from([None, None, 0, 1, True, "a", "1", 2.5, float("nan")])),
        covariates=draw(st.none() | st.lists(some, max_size=3)),
        modifier=draw(st.none() | some),
        id_column=draw(st.none() | st.none() | some),
        missing=draw(st.sampled_from(["error", "complete_case"])),
        log_transform=draw(st.lists(some, max_size=2)),
    )
    return frame, kwargs


def trial_outcome(frame: pd.DataFrame, **kwargs) -> TrialData | str:
    """The trial, checked to be valid, or the one-line message naming a column."""
    try:
        data = TrialData.from_frame(frame, **kwargs)
    except StratifyInputError as exc:
        message = check_message(exc)
        names = list(frame.columns) + [v for v in kwargs.values() if isinstance(v, str)]
        for v in kwargs.values():
            if isinstance(v, list):
                names += v
        named = any(f"'{shown(c)}" in message for c in names)
        whole_table = ("no rows", "no patients left", "data.treated", "data.log_transform")
        assert named or any(w in message for w in whole_table), (message, names)
        return message
    assert data.n_patients == len(data.X) > 0
    assert np.isfinite(data.time).all() and (data.time > 0).all()
    assert data.event.dtype == bool and data.event.any()
    assert set(np.unique(data.arm)) == {0, 1}
    assert all(d == np.float64 for d in data.X.dtypes)
    assert np.isfinite(data.X.to_numpy()).all()
    assert data.summary() and len(data.y) == data.n_patients
    return data


@fuzz(600)
@given(trial_frames())
def test_arbitrary_tables_give_a_trial_or_name_the_column(case):
    frame, kwargs = case
    trial_outcome(frame, **kwargs)


# --- files ------------------------------------------------------------------------------------

SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")


def _valid_frame() -> pd.DataFrame:
    rng = np.random.default_rng(6)
    n = 12
    return pd.DataFrame(
        {
            "time": rng.uniform(1, 700, n).round(1),
            "event": rng.integers(0, 2, n),
            "arm": np.tile([0, 1], n // 2),
            "age": rng.normal(60, 9, n).round(1),
            "stage": rng.choice(["I", "II", "III"], n),
        }
    )


def _encode(frame: pd.DataFrame, suffix: str) -> bytes:
    if suffix in (".parquet", ".pq"):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    text = frame.to_csv(index=False, sep="\t" if suffix.startswith(".tsv") else ",").encode()
    return gzip.compress(text, mtime=0) if suffix.endswith(".gz") else text


VALID_FILES = {suffix: _encode(_valid_frame(), suffix) for suffix in SUFFIXES}


def file_outcome(path: Path) -> TrialData | str:
    """Read the file and build the trial: a valid trial, or one line naming the file or column."""
    try:
        frame = read_table(path)
    except StratifyInputError as exc:
        message = check_message(exc)
        assert str(path) in message, message
        return message
    assert isinstance(frame, pd.DataFrame) and not frame.empty
    return trial_outcome(frame, time="time", event="event", arm="arm")


@st.composite
def mutated_files(draw) -> tuple[str, bytes]:
    """A valid trial file, truncated, with bytes flipped, inserted or deleted."""
    suffix = draw(st.sampled_from(SUFFIXES))
    data = bytearray(VALID_FILES[suffix])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at : at + 8] = bytes(len(data[at : at + 8]))
    return suffix, bytes(data)


@fuzz(400)
@given(mutated_files())
def test_damaged_trial_files_give_one_line(tmp_path_factory, case):
    suffix, data = case
    path = tmp_path_factory.getbasetemp() / f"damaged{suffix}"
    path.write_bytes(data)
    file_outcome(path)


@fuzz(200)
@given(st.sampled_from(SUFFIXES), st.binary(max_size=300))
def test_arbitrary_bytes_give_one_line(tmp_path_factory, suffix, data):
    path = tmp_path_factory.getbasetemp() / f"bytes{suffix}"
    path.write_bytes(data)
    file_outcome(path)


csv_cells = st.one_of(
    st.text(max_size=5), st.sampled_from(["1", "0", "2.5", "-1", "", "nan", '"', "a,b", "\n"])
)


@fuzz(200)
@given(
    st.lists(st.sampled_from(["time", "event", "arm", "age"]) | st.text(max_size=5), max_size=5),
    st.lists(st.lists(csv_cells, max_size=6), max_size=6),
    st.sampled_from([",", "\t"]),
)
def test_arbitrary_csv_text_gives_a_trial_or_one_line(tmp_path_factory, header, rows, sep):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path_factory.getbasetemp() / ("text.tsv" if sep == "\t" else "text.csv")
    path.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogatepass")
    file_outcome(path)


parquet_columns = st.one_of(
    st.lists(st.floats(), min_size=6, max_size=6),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=6, max_size=6),
    st.lists(st.text(max_size=3) | st.none(), min_size=6, max_size=6),
    st.lists(st.lists(st.integers(0, 3), max_size=2), min_size=6, max_size=6),
    st.lists(st.datetimes(), min_size=6, max_size=6),
    st.lists(st.dates(), min_size=6, max_size=6),
    st.lists(st.booleans() | st.none(), min_size=6, max_size=6),
    st.lists(
        st.decimals(allow_nan=False, places=2, max_value=10**6, min_value=-(10**6)),
        min_size=6,
        max_size=6,
    ),
    st.lists(st.binary(max_size=3), min_size=6, max_size=6),
    st.lists(
        st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), min_size=2),
        min_size=6,
        max_size=6,
    ),
    st.just(pd.Series(pd.Categorical(["a", "b", "a", "b", "a", "b"]))),
)


@fuzz(200)
@given(
    st.dictionaries(
        st.sampled_from(["time", "event", "arm", "age", "stage"]) | st.text(max_size=4),
        parquet_columns,
        max_size=5,
    ),
    st.sampled_from([".parquet", ".pq"]),
)
def test_typed_parquet_files_give_a_trial_or_one_line(tmp_path_factory, columns, suffix):
    """Parquet keeps types CSV cannot: lists, structs, dates, decimals, bytes, categories."""
    path = tmp_path_factory.getbasetemp() / f"typed{suffix}"
    try:
        pd.DataFrame(columns, index=range(6)).to_parquet(path, index=False)
    except Exception:  # pyarrow cannot store this mix (e.g. an empty struct): not a file
        assume(False)
    file_outcome(path)


# --- regressions: the bugs the properties found, with their shrunk examples --------------------

BASE = "name: t\nhorizon: 600\ndata: {simulate: {}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # TypeError: unhashable type: 'list' (a list as a mapping key)
        (BASE + "? [a, b]\n: 1\n", "not valid YAML at line 4: a key cannot be a list or a mapping"),
        # RecursionError in the YAML composer
        (BASE + "x: " + "[" * 600 + "]" * 600 + "\n", "not valid YAML: nested too deeply"),
        # ValueError: Exceeds the limit (4300 digits) for integer string conversion
        ("name: t\nhorizon: " + "9" * 5000 + "\n", "line 2: cannot read '9999"),
        # ValueError: month must be in 1..12 (a YAML date)
        (BASE + "x: 2024-13-01\n", "line 4: cannot read '2024-13-01' (month must be in 1..12)"),
        # ValueError: Circular reference detected (config_hash of a self-referencing alias)
        (
            BASE + "learners: [{name: s_learner, params: {a: &x [*x]}}]\n",
            "learners.0.params.a: nested more than 32 levels deep",
        ),
        # a line break in a key or label made a two-line message
        (BASE + '"a\\nb": 1\n', "unknown key 'a\\nb'"),
        (BASE + 'heterogeneity: {primary: "p\\nq"}\n', "heterogeneity.primary: 'p\\nq' is not"),
        # TypeError "keywords must be strings" did not name the key
        (BASE + "~: 1\n", "key None is not a name (keys are text)"),
        (BASE + "1.5: 1\n", "key 1.5 is not a name (keys are text)"),
        # a params key that is not text was reported as "not a valid value of this field"
        (BASE + "learners: [{name: a, params: {1: 2}}]\n", "learners.0.params: key 1 is not a"),
        # accepted, then a traceback at run time
        ("name: t\nhorizon: .inf\ndata: {simulate: {}}\n", "horizon: Input should be a finite"),
        (BASE + "seed: -1\n", "seed: Input should be greater than or equal to 0 (got -1)"),
        (BASE + "seed: 4294967296\n", "seed: Input should be less than or equal to 4294967295"),
        (BASE + "execution: {n_jobs: 0}\n", "execution.n_jobs: 0 workers cannot run anything"),
        (BASE + 'tracking: {uri: "a\\u0000b"}\n', "tracking.uri: must not contain line breaks"),
        # UnicodeDecodeError in config_hash: bytes (!!binary) among a learner's params
        (
            BASE + "learners: [{name: a, params: {x: [1, !!binary /w==]}}]\n",
            "learners.0.params: 'x.1' must be a number, text, true/false, null, or a list",
        ),
        # RuntimeError: Could not determine home directory (config.tracking_uri)
        (BASE + "tracking: {uri: ~nosuchuser/runs}\n", "tracking.uri: cannot find the home folder"),
        (BASE + "tracking: {uri: 'sqlite:///~nosuchuser/m.db'}\n", "folder of '~nosuchuser'"),
    ],
)
def test_config_regressions(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    message = config_outcome(lambda: load_config(path))
    assert isinstance(message, str) and expected in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # ValueError from the YAML constructor escaped apply_override
        ("seed=" + "9" * 5000, "value: not valid YAML at line 1: cannot read '9999"),
        ("horizon=2024-13-01", "value: not valid YAML at line 1: cannot read '2024-13-01'"),
        # an empty name in a dotted key silently made a key ''
        ("data..n=1", "override 'data..n=1': empty name in the key 'data..n'"),
        # a self-referencing value
        ("learners=&a [*a]", "nested more than 32 levels deep"),
    ],
)
def test_override_regressions(override, expected):
    message = config_outcome(lambda: load_config(CONFIGS["mirocals"], [override]))
    assert isinstance(message, str) and expected in message


def test_validate_config_refuses_a_list_and_a_huge_mapping():
    assert "expected a mapping" in config_outcome(lambda: validate_config([1]))
    raw = {"name": "t", "horizon": 1, "data": {"simulate": {}}, "x": list(range(200_000))}
    assert "more than 100000 values" in config_outcome(lambda: validate_config(raw))
    with pytest.raises(StratifyInputError, match="empty name"):
        apply_override({}, "a.=1")


def _frame(**columns) -> pd.DataFrame:
    base = {
        "time": [5.0, 8, 3, 9, 4, 6],
        "event": [1, 0, 1, 1, 0, 1],
        "arm": [0, 1, 0, 1, 0, 1],
        "age": [50.0, 60, 70, 40, 55, 65],
    }
    return pd.DataFrame({**base, **columns})


@pytest.mark.parametrize(
    ("frame", "kwargs", "expected"),
    [
        # ValueError: No objects to concatenate (no covariates at all) - now a valid trial
        (_frame().drop(columns="age"), {}, None),
        # TypeError: arg must be a list, tuple, 1-d array, or Series (duplicated column)
        (
            pd.concat([_frame(), _frame()[["time"]]], axis=1),
            {},
            "column 'time' appears 2 times in the data",
        ),
        # TypeError: unhashable type: 'list' (a list in the arm column)
        (_frame(arm=[[0], [1], 0, 1, 0, 1]), {}, "column 'arm': row 1 holds [0], not a single"),
        (_frame(age=[[0], [1], 0, 1, 0, 1]), {}, "covariate 'age': row 1 holds [0]"),
        # UnicodeDecodeError: bytes that are not UTF-8 in a categorical covariate (Parquet binary)
        (_frame(x0=[b"\x80", b"a", b"\x80", b"a", b"a", b"a"]), {}, None),
        # RuntimeWarning: overflow in scalar subtract (an int64 column near the limits)
        (_frame(big=np.array([-(2**63), -(2**62), 0, 2**62, 2**63 - 2, 2**63 - 1])), {}, None),
        # ComplexWarning: casting complex values to real discards the imaginary part
        (_frame(age=np.arange(6) + 1j), {}, "covariate 'age' holds complex numbers"),
        (_frame(time=np.arange(1, 7) + 0j), {}, "column 'time': non-numeric time (1+0j) in row 1"),
        # OverflowError: int too large to convert to float (an object column)
        (
            _frame(time=pd.Series([10**400, 2, 3, 4, 5, 6], dtype=object)),
            {},
            "column 'time': non-numeric time 1000",
        ),
        # accepted silently: infinite covariates, dates and booleans as times
        (_frame(age=[np.inf, 1, 2, 3, 4, 5]), {}, "covariate 'age' has infinite values (inf in"),
        (
            _frame(time=pd.date_range("2020-01-01", periods=6)),
            {},
            "column 'time': times must be numbers (days), not datetime64[ns] values",
        ),
        (_frame(time=[True] * 6), {}, "column 'time': times must be numbers (days), not bool"),
        (
            _frame(age=[np.inf, 1, 2, 3, 4, 5]),
            {"log_transform": ["age"]},
            "data.log_transform: column 'age' has values ≤ 0 or infinite",
        ),
        # a line break in a column name made a two-line message
        (_frame().rename(columns={"age": "a\nb"}), {"covariates": ["x"]}, "(columns: time, e"),
        # misleading messages
        (_frame().iloc[:0], {}, "the data have no rows"),
        (
            _frame(age=[np.nan] * 6),
            {"missing": "complete_case"},
            "no patients left: all 6 have a missing covariate value",
        ),
        (
            _frame(),
            {"log_transform": ["age", "age"]},
            "data.log_transform: 'age' is listed twice",
        ),
    ],
)
def test_data_regressions(frame, kwargs, expected):
    result = trial_outcome(frame, **kwargs)
    if expected is None:
        assert isinstance(result, TrialData)
    else:
        assert isinstance(result, str) and expected in result, result
    if "a\nb" in frame.columns:
        assert "a\\nb" in result


def _parquet_with_pandas_metadata(edit) -> bytes:
    """A valid trial as Parquet, its pandas metadata (JSON in the file's schema) edited."""
    table = pa.Table.from_pandas(_valid_frame(), preserve_index=False)
    metadata = json.loads(table.schema.metadata[b"pandas"])
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({b"pandas": edit(metadata)}), buffer)
    return buffer.getvalue()


def _drop_index_columns(metadata: dict) -> bytes:
    del metadata["index_columns"]
    return json.dumps(metadata).encode()


def _misspell_a_dtype(metadata: dict) -> bytes:
    metadata["columns"][0]["numpy_type"] = "fmoat64"
    return json.dumps(metadata).encode()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        # a Parquet file whose pandas metadata was damaged (shrunk from byte flips): KeyError,
        # TypeError and UnicodeDecodeError escaped read_table (only ValueError/OSError caught)
        (
            "meta.parquet",
            lambda: _parquet_with_pandas_metadata(_drop_index_columns),
            "not a valid Parquet file (KeyError: 'index_columns')",
        ),
        (
            "meta.parquet",
            lambda: _parquet_with_pandas_metadata(_misspell_a_dtype),
            "not a valid Parquet file (TypeError: data type 'fmoat64' not understood)",
        ),
        (
            "meta.parquet",
            lambda: _parquet_with_pandas_metadata(lambda _: b"\xff\xfe"),
            "not a valid Parquet file ('utf-8' codec can't decode byte 0xff",
        ),
        # EOFError: a truncated gzip CSV
        ("t.csv.gz", lambda: VALID_FILES[".csv.gz"][:60], "compressed data truncated or corrupt"),
        # a truncated CSV silently became a missing value in its last row
        ("t.csv", lambda: VALID_FILES[".csv"][:-12], "ends in the middle of a row: its last line"),
        # "file not found" for a folder; unreadable encodings named
        ("dir.csv", None, "is a folder, not a file"),
        ("u16.csv", lambda: VALID_FILES[".csv"].decode().encode("utf-16"), "is UTF-16 text"),
        ("gz.csv", lambda: VALID_FILES[".csv.gz"], "is gzip-compressed; give it the suffix .csv"),
        ("pq.csv", lambda: VALID_FILES[".parquet"], "is a Parquet file; give it the suffix"),
        ("latin.csv", lambda: "time,g\n1,caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        # "has no rows" for a Parquet file with rows but no columns
        ("nocols.parquet", lambda: _encode(pd.DataFrame(index=range(3)), ".parquet"), "no columns"),
        # OSError: File name too long
        ("x" * 300 + ".csv", b"", "File name too long"),
    ],
)
def test_file_regressions(tmp_path, name, data, expected):
    path = tmp_path / name
    if data is None:
        path.mkdir()
    elif callable(data):
        path.write_bytes(data())
    message = file_outcome(path)
    assert isinstance(message, str) and expected in message, message


def test_a_decimal_column_and_a_quoted_multiline_last_field_are_read():
    """A Parquet decimal is a number (it was one-hot encoded as a category of each value);
    no false alarm: a quoted line break in the last field is not a truncated row."""
    frame = _valid_frame().assign(age=[Decimal(f"{i}.5") for i in range(12)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.parquet"
        frame.to_parquet(path, index=False)
        data = file_outcome(path)
        assert isinstance(data, TrialData) and "age" in data.covariates
        np.testing.assert_allclose(data.X["age"], np.arange(12) + 0.5)
        text = Path(folder) / "q.csv"
        text.write_text('time,event,arm,note\n5,1,0,"a"\n6,1,1,"b\nc"', encoding="utf-8")
        assert read_table(text)["note"].tolist() == ["a", "b\nc"]
