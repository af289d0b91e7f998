"""Config schema, YAML loading and overrides: names, suggestions, path resolution, safety."""

import pytest
import yaml

from kit import ROOT
from stratify.config import apply_override, load_config, project_root, validate_config
from stratify.exceptions import StratifyInputError

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
BASE = {"name": "t", "horizon": 640, "data": {"simulate": {"n": 220}}}


def test_configs_folder_is_not_empty():
    assert {p.name for p in CONFIGS} >= {"mirocals.yaml", "gbsg2.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    config = load_config(path)
    assert config.base_dir == ROOT
    assert config.tracking_uri == str(ROOT / "mlruns")


def test_mirocals_config_matches_the_trial():
    config = load_config(ROOT / "configs" / "mirocals.yaml")
    assert config.horizon == 640
    assert config.data.simulate.n == 220
    assert config.data.modifier == "csf_pnfh"
    assert config.data.cutpoints == [750, 3700]
    assert config.tracking.log_patient_level is False


def test_overrides_change_nested_and_top_level_values():
    config = load_config(ROOT / "configs" / "mirocals.yaml", ["data.simulate.n=400", "seed=3"])
    assert config.data.simulate.n == 400
    assert config.seed == 3
    assert config.simulation_seed == 3


def test_override_null_removes_a_setting_so_another_source_can_be_used():
    raw = {"data": {"simulate": {"n": 1}}}
    apply_override(raw, "data.simulate=null")
    apply_override(raw, "data.path=trial.csv")
    assert raw == {"data": {"path": "trial.csv"}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.simulat.n=400"], "unknown key 'data.simulat'; did you mean 'data.simulate'?"),
        (
            ["data.simulate.nn=400"],
            "unknown key 'data.simulate.nn'; did you mean 'data.simulate.n'?",
        ),
        (["horizont=600"], "unknown key 'horizont'; did you mean 'horizon'?"),
        (
            ["tracking.log_patient=true"],
            "unknown key 'tracking.log_patient'; did you mean 'tracking.log_patient_level'?",
        ),
        (["data.simulate.n=abc"], "data.simulate.n: Input should be a valid integer"),
        (["horizon=-5"], "horizon: Input should be greater than 0 (got -5)"),
        (["data.simulate.design=weibull"], "data.simulate.design: Input should be 'mirocals'"),
        (["data.path=x.csv"], "give exactly one of data.path, data.dataset, data.simulate"),
        (["data.cutpoints=[3700,750]"], "data.cutpoints must be strictly increasing"),
        (["seed"], "override 'seed': expected key=value"),
        (["data.treated=[1,2]"], "data.treated: not a valid value of this field (got [1, 2])"),
        (["tracking=5"], "tracking: Input should be a valid dictionary (got 5)"),
        (["seed.x=1"], "override 'seed.x=1': 'seed' is not a section"),
        (
            ["explain.learner=forest"],
            "explain.learner: 'forest' is not a learner of this config (learners: s_learner,",
        ),
        (["explain.background=-1"], "explain.background: Input should be greater than or equal"),
        (["heterogeneity.test=wald"], "heterogeneity.test: Input should be 'rate' or 'blp'"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(StratifyInputError) as info:
        load_config(ROOT / "configs" / "mirocals.yaml", overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_key_is_named():
    with pytest.raises(StratifyInputError, match="'horizon' is required"):
        validate_config({"name": "t", "data": {"simulate": {}}})


def test_unreadable_and_non_yaml_files(tmp_path):
    with pytest.raises(StratifyInputError, match=r"config file .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StratifyInputError, match="not valid YAML at line"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(StratifyInputError, match="expected a mapping"):
        load_config(listy)


def test_yaml_cannot_construct_python_objects(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\nhorizon: 1\n")
    with pytest.raises(StratifyInputError, match="not valid YAML"):
        load_config(evil)


def test_relative_paths_resolve_against_project_root_not_cwd(tmp_path, monkeypatch):
    project = tmp_path / "study"
    (project / "configs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    cfg = project / "configs" / "c.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "data": {"path": "data/t.csv"}}))
    monkeypatch.chdir(tmp_path)
    config = load_config(cfg)
    assert project_root(cfg) == project
    assert config.data_path == project / "data" / "t.csv"
    assert config.tracking_uri == str(project / "mlruns")


def test_without_project_markers_paths_resolve_against_config_folder(tmp_path):
    cfg = tmp_path / "loose" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text(yaml.safe_dump(BASE))
    assert load_config(cfg).tracking_uri == str(tmp_path / "loose" / "mlruns")


@pytest.mark.parametrize("uri", ["sqlite:////tmp/x.db", "http://127.0.0.1:5000"])
def test_tracking_uris_pass_through(uri):
    assert validate_config({**BASE, "tracking": {"uri": uri}}).tracking_uri == uri


def test_config_hash_is_stable_and_sensitive():
    a = validate_config(BASE)
    b = validate_config(dict(BASE))
    c = validate_config({**BASE, "seed": 1})
    assert a.config_hash == b.config_hash
    assert a.config_hash != c.config_hash
    assert len(a.config_hash) == 12


def test_flat_params_are_dotted_strings():
    params = load_config(ROOT / "configs" / "mirocals.yaml").flat_params()
    assert params["data.simulate.n"] == "220"
    assert params["data.cutpoints"] == "750.0,3700.0"
    assert params["tracking.log_patient_level"] == "False"
    assert "base_dir" not in params


def test_duplicate_keys_and_non_utf8_are_one_line_errors(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: x\nseed: 1\nseed: 2\nhorizon: 3\ndata: {simulate: {}}\n")
    with pytest.raises(StratifyInputError, match="line 3: key 'seed' is given twice"):
        load_config(dup)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(StratifyInputError, match="not UTF-8 text"):
        load_config(latin)


@pytest.mark.parametrize("cutpoints", [[], [float("nan")], [750, float("inf")]])
def test_cutpoints_must_be_finite_numbers(cutpoints):
    raw = {**BASE, "data": {"simulate": {}, "modifier": "csf_pnfh", "cutpoints": cutpoints}}
    with pytest.raises(StratifyInputError, match=r"data\.cutpoints must be one or more finite"):
        validate_config(raw)


def test_local_tracking_paths_resolve_against_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    base = {**BASE, "tracking": {}}
    cases = {
        "sqlite:///runs/m.db": f"sqlite:///{tmp_path / 'runs' / 'm.db'}",
        "sqlite:////abs/m.db": "sqlite:////abs/m.db",
        "~/stores/x": str(tmp_path / "home" / "stores" / "x"),
        "file:///srv/mlruns": "/srv/mlruns",
        "s3://bucket/prefix": "s3://bucket/prefix",
        "postgresql+psycopg2://u@localhost/db": "postgresql+psycopg2://u@localhost/db",
    }
    for uri, expected in cases.items():
        config = validate_config({**base, "tracking": {"uri": uri}}, base_dir=tmp_path)
        assert config.tracking_uri == expected, uri


def test_config_hash_ignores_where_runs_are_tracked():
    a = validate_config({**BASE, "tracking": {"uri": "one"}})
    b = validate_config({**BASE, "tracking": {"uri": "two", "experiment": "other"}})
    assert a.config_hash == b.config_hash


def test_curve_times_are_equal_steps_up_to_the_horizon():
    # the one grid of explained and served survival curves (it was built in two places)
    config = validate_config({**BASE, "horizon": 600, "explain": {"times": 4}})
    assert config.curve_times.tolist() == [150.0, 300.0, 450.0, 600.0]
    assert validate_config(BASE).curve_times[-1] == 640.0
