"""`stratify compare`: runs × metrics read back from a store, exactly as MLflow holds them.

Two stores, made once per module: one by a real `stratify run` of the MIROCALS-like config
(all six learners, 3 folds × 1 repeat, no SHAP, no logged models), one with hand-made runs
whose values make the order, the labels, the statuses and the cell formats known in advance.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kit import ROOT, SMALL_CV
from stratify.cli import compare as cmp
from stratify.cli.app import main as stratify_main
from stratify.exceptions import StratifyInputError
from stratify.report.comparison import print_table
from stratify.tracking import queries
from stratify.tracking.tracker import STORE_DB, Store, Tracker

MIROCALS_LEARNERS = {
    "s_learner",
    "t_learner",
    "coxnet_interaction",
    "dr_learner",
    "cox_interaction",
    "causal_survival_forest",
}
FAST = [
    *SMALL_CV, "explain.enabled=false", "heterogeneity.n_bootstrap=50",
    "execution.n_jobs=1", "tracking.log_models=false",  # compare reads metrics, not models
]  # fmt: skip


def _fresh_store(factory, name: str, template: Path) -> Path:
    folder = factory.mktemp(name) / "mlruns"
    folder.mkdir()
    shutil.copy(template, folder / STORE_DB)
    return folder


@pytest.fixture(scope="module")
def mirocals(tmp_path_factory, _empty_store_db):
    """A store made by `stratify run configs/mirocals.yaml` (fast CV, no SHAP, no models)."""
    folder = _fresh_store(tmp_path_factory, "mirocals", _empty_store_db)
    config = str(ROOT / "configs" / "mirocals.yaml")
    assert stratify_main(["run", config, f"tracking.uri={folder}", *FAST]) == 0
    client = MlflowClient(Store.from_uri(str(folder)).tracking_uri)
    experiment = client.get_experiment_by_name("mirocals").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_id: r for r in runs if r.info.run_id != parent.info.run_id}
    return SimpleNamespace(folder=folder, parent=parent, children=children)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, _empty_store_db):
    """Hand-made runs in the layout of `stratify run`, with known values.

    Experiment ``trial-a``: finished parent ``cfg-aaaaaaa`` with four learner runs (one
    labelled ``t_small``, a tie on ``rate_autoc``, one without it) and failed parent
    ``cfg-bbbbbbb`` with a finished and a failed learner run. Experiments ``empty`` (no runs)
    and ``no-learners`` (one finished run without learners).
    """
    folder = _fresh_store(tmp_path_factory, "synthetic", _empty_store_db)
    tracker = Tracker(Store.from_uri(str(folder)))
    ids = {}
    learners = {
        "s_learner": ("s_learner", {"rate_autoc": 5.0, "ibs": 0.20, "heterogeneity_p": 0.30}),
        "t_small": ("t_learner", {"rate_autoc": 9.0, "ibs": 0.25, "heterogeneity_p": 0.0004}),
        "t_big": ("t_learner", {"rate_autoc": 5.0, "ibs": 0.15, "heterogeneity_p": math.nan}),
        "cox": ("cox_interaction", {"ibs": 0.18, "heterogeneity_p": 0.05}),
    }
    with tracker.run("trial-a", run_name="cfg-aaaaaaa", tags=_hash("a")) as parent:
        ids["parent_a"] = parent
        tracker.log_metrics(parent, {"heterogeneity_p": 0.0016, "hr_adjusted": 0.8})
        for label, (learner, values) in learners.items():
            ids[label] = _child(tracker, "trial-a", parent, "a", label, learner, values)
    with (
        pytest.raises(RuntimeError),
        tracker.run("trial-a", run_name="cfg-bbbbbbb", tags=_hash("b")) as parent,
    ):
        ids["parent_b"] = parent
        ids["b_ok"] = _child(tracker, "trial-a", parent, "b", "s_learner", "s_learner", {})
        with tracker.run(
            "trial-a", run_name="cfg-t_learner-bbbbbbb", parent_run_id=parent,
            tags=_hash("b") | {"stratify.learner": "t_learner"},
        ) as child:  # fmt: skip
            ids["b_failed"] = child
            tracker.log_metrics(child, _metrics(7.0, 0.3, 0.5))
            raise RuntimeError("the forest did not grow")
    tracker.experiment_id("empty")
    with tracker.run("no-learners", run_name="cfg-ccccccc", tags=_hash("c")) as run_id:
        ids["no_learners"] = run_id
        tracker.log_metrics(run_id, {"hr_adjusted": 0.7})
    return SimpleNamespace(folder=folder, ids=ids, client=tracker.client)


def _hash(letter: str) -> dict[str, str]:
    return {"stratify.config_hash": letter * 12}


def _metrics(autoc: float, ibs: float, p: float) -> dict[str, float]:
    return {
        "rate_autoc": autoc, "rate_autoc_se": 2.0, "ibs": ibs, "ibs_sd": 0.01,
        "heterogeneity_p": p, "c_index_harrell": 0.6, "c_index_harrell_sd": 0.05,
        "c_index_uno": 0.58, "c_index_uno_sd": 0.06, "cate_rmst_mean": 12.34,
        "cate_rmst_sd": 40.0, "c_for_benefit": 0.52,
    }  # fmt: skip


def _child(tracker, experiment, parent, letter, label, learner, values) -> str:
    tags = _hash(letter) | {"stratify.learner": learner}
    name = f"cfg-{label}-{letter * 7}"
    with tracker.run(experiment, run_name=name, tags=tags, parent_run_id=parent) as child:
        metrics = _metrics(0, 0, 0) | values
        if "rate_autoc" not in values:
            metrics = {k: v for k, v in metrics.items() if not k.startswith("rate_autoc")}
        tracker.log_metrics(child, metrics)
    return child


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="stratify")
    cmp.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *argv])
    return args.handler(args)


@pytest.fixture
def plain_env(monkeypatch):
    """No environment variable that would make rich style a pipe."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)


# --- the real run --------------------------------------------------------------------------------


def test_mirocals_run_lists_every_learner_with_the_values_mlflow_holds(mirocals):
    frame = queries.compare_runs(mirocals.folder, experiment="mirocals")
    assert list(frame.columns) == [
        "run_id", "run_name", "learner", "label", "status", "parent_run_id",
        "cate_rmst_mean", "c_index_harrell", "c_index_harrell_sd", "ibs", "ibs_sd",
        "rate_autoc", "rate_autoc_se", "c_for_benefit", "heterogeneity_p",
        "cate_rmse", "cate_spearman",
    ]  # fmt: skip
    assert len(frame) == len(MIROCALS_LEARNERS)
    assert set(frame["learner"]) == set(frame["label"]) == MIROCALS_LEARNERS
    assert set(frame["run_id"]) == set(mirocals.children)
    assert set(frame["parent_run_id"]) == {mirocals.parent.info.run_id}
    assert set(frame["status"]) == {"FINISHED"}
    hash7 = mirocals.parent.data.tags["stratify.config_hash"][:7]
    assert mirocals.parent.info.run_name == f"mirocals-{hash7}"
    for row in frame.itertuples(index=False):
        logged = mirocals.children[row.run_id].data.metrics
        assert row.run_name == f"mirocals-{row.learner}-{hash7}"
        for column in frame.columns[6:]:
            assert getattr(row, column) == logged[column], (row.learner, column)
    assert frame["rate_autoc"].is_monotonic_decreasing


def test_mirocals_table_prints_plainly_one_line_per_learner(mirocals, plain_env, capsys):
    frame = queries.compare_runs(mirocals.folder, experiment="mirocals")
    assert _cli("--store", str(mirocals.folder), "--experiment", "mirocals") == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    lines = out.splitlines()
    hash7 = mirocals.parent.data.tags["stratify.config_hash"][:7]
    assert (
        lines[0].strip()
        == f"experiment 'mirocals': {len(MIROCALS_LEARNERS)} runs of mirocals-{hash7}"
    )
    found = []
    for row in frame.itertuples(index=False):
        c = f"{row.c_index_harrell:.3f} ± {row.c_index_harrell_sd:.3f}"
        autoc = f"{row.rate_autoc:.1f} ± {row.rate_autoc_se:.1f}"
        (line,) = [ln for ln in lines if row.run_id[:8] in ln]
        assert f"  {row.learner}  " in line
        assert c in line and autoc in line
        found.append(lines.index(line))
    assert found == sorted(found)  # rows in the frame's order: rate_autoc, best first
    assert "sorted by rate_autoc, descending" in out
    assert "± SD: standard deviation over cross-validation folds × repeats" in out


def test_parent_run_id_or_its_prefix_stands_for_its_learners(mirocals):
    by_experiment = queries.compare_runs(mirocals.folder, experiment="mirocals")
    parent = mirocals.parent.info.run_id
    for ref in (parent, parent[:8], parent.upper()):
        pd.testing.assert_frame_equal(
            queries.compare_runs(mirocals.folder, run_ids=[ref]), by_experiment
        )
    child = by_experiment["run_id"].iloc[2]
    one = queries.compare_runs(mirocals.folder, run_ids=[child, child])
    pd.testing.assert_frame_equal(one, by_experiment.iloc[[2]].reset_index(drop=True))


def test_all_adds_the_parent_run(mirocals):
    frame = queries.compare_runs(mirocals.folder, experiment="mirocals", include_parents=True)
    assert len(frame) == len(MIROCALS_LEARNERS) + 1
    parent = frame[frame["run_id"] == mirocals.parent.info.run_id].iloc[0]
    assert parent["learner"] is None and parent["label"] is None
    assert parent["heterogeneity_p"] == mirocals.parent.data.metrics["heterogeneity_p"]
    assert math.isnan(parent["rate_autoc"])
    assert frame["run_id"].iloc[-1] == mirocals.parent.info.run_id  # no rate_autoc: last
    trial = ["hr_adjusted", "rmst_diff", "rmst_diff_se", "interaction_p"]  # the trial analysis
    assert list(frame.columns[-4:]) == trial
    for column in trial:
        assert parent[column] == mirocals.parent.data.metrics[column]
    assert frame[trial].iloc[: len(MIROCALS_LEARNERS)].isna().all().all()


def test_json_is_all_stdout_and_round_trips(mirocals, capsys):
    frame = queries.compare_runs(
        mirocals.folder, experiment="mirocals", metrics=["ibs", "c_index_*"]
    )
    code = _cli("--store", str(mirocals.folder), "-e", "mirocals", "--json", "-m", "ibs,c_index_*")
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    records = json.loads(captured.out)
    assert [r["run_id"] for r in records] == list(frame["run_id"])
    assert list(records[0]) == [
        "run_id", "run_name", "learner", "label", "status", "parent_run_id",
        "ibs", "ibs_sd", "c_index_harrell", "c_index_harrell_sd", "c_index_uno", "c_index_uno_sd",
    ]  # fmt: skip
    assert {r["learner"] for r in records} == MIROCALS_LEARNERS
    pd.testing.assert_frame_equal(pd.DataFrame(records), frame)
    assert frame["ibs"].is_monotonic_increasing  # first metric, lower is better


def test_csv_is_written_and_reads_back_exactly(mirocals, plain_env, tmp_path, capsys):
    frame = queries.compare_runs(mirocals.folder, experiment="mirocals")
    out = tmp_path / "tables" / "compare.csv"
    assert _cli("--store", str(mirocals.folder), "-e", "mirocals", "--csv", str(out)) == 0
    captured = capsys.readouterr()
    assert captured.err == f"wrote {len(MIROCALS_LEARNERS)} runs to {out}\n"
    assert f"experiment 'mirocals': {len(MIROCALS_LEARNERS)} runs" in captured.out  # the table
    back = pd.read_csv(out, float_precision="round_trip")
    pd.testing.assert_frame_equal(back, frame)
    assert [p.name for p in out.parent.iterdir()] == ["compare.csv"]  # no temporary left
    assert _cli("--store", str(mirocals.folder), "-e", "mirocals", "--csv", "-") == 0
    stdout = capsys.readouterr().out
    pd.testing.assert_frame_equal(
        pd.read_csv(io.StringIO(stdout), float_precision="round_trip"), frame
    )


def test_config_names_the_experiment(mirocals, capsys):
    config = str(ROOT / "configs" / "mirocals.yaml")
    assert _cli("--config", config, "--store", str(mirocals.folder), "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == len(MIROCALS_LEARNERS)


# --- order, labels, statuses, cells (hand-made runs) --------------------------------------------


def test_default_order_is_rate_autoc_best_first_ties_by_name_missing_last(synthetic):
    frame = queries.compare_runs(synthetic.folder, experiment="trial-a")
    assert list(frame["label"]) == ["t_small", "s_learner", "t_big", "cox"]
    assert list(frame["run_name"]) == [
        "cfg-t_small-aaaaaaa", "cfg-s_learner-aaaaaaa", "cfg-t_big-aaaaaaa", "cfg-cox-aaaaaaa",
    ]  # fmt: skip
    assert math.isnan(frame["rate_autoc"].iloc[-1])


@pytest.mark.parametrize(
    ("sort", "labels"),
    [
        ("ibs", ["t_big", "cox", "s_learner", "t_small"]),
        ("ibs:desc", ["t_small", "s_learner", "cox", "t_big"]),
        ("heterogeneity_p", ["t_small", "cox", "s_learner", "t_big"]),  # NaN last
        ("rate_autoc:asc", ["s_learner", "t_big", "t_small", "cox"]),
        ("label", ["cox", "s_learner", "t_big", "t_small"]),
    ],
)
def test_sort_picks_the_column_and_best_first_direction(synthetic, sort, labels):
    frame = queries.compare_runs(synthetic.folder, experiment="trial-a", sort=sort)
    assert list(frame["label"]) == labels


def test_sorting_on_a_metric_not_shown_adds_it(synthetic):
    comparison = queries.compare(
        synthetic.folder, experiment="trial-a", metrics=["c_for_benefit"], sort="ibs"
    )
    assert comparison.metrics == ("c_for_benefit", "ibs")
    assert list(comparison.frame.columns[6:]) == ["c_for_benefit", "ibs", "ibs_sd"]
    assert comparison.caption.endswith("sorted by ibs, ascending")


def test_label_and_learner_are_both_kept(synthetic):
    frame = queries.compare_runs(synthetic.folder, experiment="trial-a").set_index("label")
    assert frame.loc["t_small", "learner"] == "t_learner"
    assert frame.loc["cox", "learner"] == "cox_interaction"
    assert set(frame["parent_run_id"]) == {synthetic.ids["parent_a"]}


def test_experiment_skips_runs_of_unfinished_parents_naming_them_shows_status(synthetic, plain_env):
    frame = queries.compare_runs(synthetic.folder, experiment="trial-a")
    assert synthetic.ids["b_ok"] not in set(frame["run_id"])
    comparison = queries.compare(synthetic.folder, run_ids=[synthetic.ids["parent_b"]])
    assert dict(zip(comparison.frame["run_id"], comparison.frame["status"], strict=True)) == {
        synthetic.ids["b_failed"]: "FAILED",
        synthetic.ids["b_ok"]: "FINISHED",
    }
    assert comparison.source == f"run {synthetic.ids['parent_b'][:8]}"
    text = _printed(comparison)
    assert "status" in text and "FAILED" in text


def test_cells_mean_sd_p_values_and_missing(synthetic, plain_env):
    comparison = queries.compare(synthetic.folder, experiment="trial-a")
    text = _printed(comparison)
    labels = ("t_small", "t_big", "s_learner", "cox")
    rows = {label: _line(text, synthetic.ids[label][:8]) for label in labels}
    assert "9.0 ± 2.0" in rows["t_small"]  # rate_autoc ± its bootstrap SE, one decimal
    assert "0.250 ± 0.010" in rows["t_small"]  # ibs ± its SD over folds, three decimals
    assert "< 0.001" in rows["t_small"]  # heterogeneity_p 0.0004
    assert " 0.3 " in rows["s_learner"]  # heterogeneity_p 0.30, to 3 significant digits
    assert "t_small (t_learner)" in rows["t_small"]
    assert "trial-a': 4 runs of cfg-aaaaaaa" in text  # one stratify run: named in the title
    assert rows["cox"].count("–") == 1  # no rate_autoc
    assert rows["t_big"].count("–") == 1  # heterogeneity_p logged as NaN
    assert "12.3  " in rows["cox"]  # cate_rmst_mean: no companion (cate_rmst_sd is its own)
    assert "± SE: bootstrap standard error" in text


def test_runs_of_several_stratify_runs_get_a_config_run_column(synthetic, plain_env):
    ids = synthetic.ids
    text = _printed(queries.compare(synthetic.folder, run_ids=[ids["parent_a"], ids["parent_b"]]))
    assert (
        text.splitlines()[0].strip() == f"runs {ids['parent_a'][:8]}, {ids['parent_b'][:8]}: 6 runs"
    )
    assert "config run" in text
    assert "cfg-bbbbbbb" in _line(text, ids["b_ok"][:8])
    assert "cfg-aaaaaaa" in _line(text, ids["cox"][:8])


def test_glob_metrics_keep_companions_as_spreads(synthetic):
    frame = queries.compare_runs(
        synthetic.folder, experiment="trial-a", metrics=["c_index*", "cate_*"]
    )
    assert list(frame.columns[6:]) == [
        "c_index_harrell", "c_index_harrell_sd", "c_index_uno", "c_index_uno_sd",
        "cate_rmst_mean", "cate_rmst_sd",
    ]  # fmt: skip
    assert queries.metric_columns(frame) == [
        "c_index_harrell",
        "c_index_uno",
        "cate_rmst_mean",
        "cate_rmst_sd",
    ]


def test_a_pipe_gets_plain_text_a_terminal_gets_styles(synthetic, plain_env, monkeypatch):
    comparison = queries.compare(synthetic.folder, experiment="trial-a")
    plain = _printed(comparison)
    assert "\x1b[" not in plain
    assert all(_line(plain, run_id[:8]) for run_id in comparison.frame["run_id"])  # no wrapping
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in _printed(comparison)


@pytest.mark.parametrize(("columns", "hidden"), [(100, ""), (72, "c_for_benefit, heterogeneity_p")])
def test_a_narrow_terminal_gets_broken_names_then_fewer_metrics(
    synthetic, plain_env, monkeypatch, columns, hidden
):
    comparison = queries.compare(synthetic.folder, experiment="trial-a")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", str(columns))
    text = re.sub(r"\x1b\[[0-9;]*m", "", _printed(comparison))
    assert max(len(line.rstrip()) for line in text.splitlines()) <= columns
    assert "c_index_harrell" not in text and "c_index_ " in text  # broken after an underscore
    assert "0.600" in _line(text, synthetic.ids["s_learner"][:8])
    assert "±0.050" in text  # the spread on its own line, whole
    words = " ".join(text.split())
    assert words.endswith(f"not shown (terminal too narrow): {hidden}") == bool(hidden)
    assert "not shown" not in words or hidden
    for run_id in comparison.frame["run_id"]:
        assert run_id[:8] in text


def _printed(comparison) -> str:
    buffer = io.StringIO()
    print_table(comparison, file=buffer)
    return buffer.getvalue()


def _line(text: str, needle: str) -> str:
    (line,) = [ln for ln in text.splitlines() if needle in ln]
    return line


# --- errors: one line naming what is wrong ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"experiment": "trial"},
            "--experiment: no experiment 'trial' in this store; did you mean 'trial-a'? "
            "experiments: Default, empty, no-learners, trial-a",
        ),
        ({"experiment": "empty"}, "--experiment: experiment 'empty' has no runs"),
        (
            {"experiment": "no-learners"},
            "--experiment: experiment 'no-learners' has no learner runs (1 finished run "
            "without learners); --all lists them",
        ),
        (
            {"experiment": "trial-a", "metrics": ["c_index"]},
            "--metrics: no metric 'c_index' in these runs; did you mean c_index_uno, "
            "c_index_harrell?",
        ),
        (
            {"experiment": "trial-a", "metrics": ["hr_*"]},
            "--metrics: no metric matches 'hr_*'; metrics of these runs: ",
        ),
        ({"run_ids": ["0123456789abcdef"]}, "run '0123456789abcdef': no such run in this store"),
        ({"experiment": "trial-a", "sort": "ibs:up"}, "--sort: 'ibs:up': use NAME, NAME:asc or"),
        ({"experiment": "trial-a", "sort": "ibz"}, "--sort: no column 'ibz' in these runs; did"),
        ({}, "give --experiment NAME or run ids (experiments in sqlite:///"),
        ({"experiment": "trial-a", "run_ids": ["abc"]}, "give --experiment NAME or run ids, not"),
    ],
)
def test_bad_input_is_one_line_naming_it(synthetic, kwargs, message):
    with pytest.raises(StratifyInputError) as caught:
        queries.compare_runs(synthetic.folder, **kwargs)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_all_lists_runs_without_learners(synthetic):
    frame = queries.compare_runs(synthetic.folder, experiment="no-learners", include_parents=True)
    assert list(frame["run_id"]) == [synthetic.ids["no_learners"]]
    assert list(frame.columns[6:]) == ["hr_adjusted"]  # the trial analysis of parent runs


def test_an_ambiguous_prefix_names_the_runs():
    """Two runs sharing 6 hex digits are rare in a real store: a stand-in client has them."""

    class Page(list):
        token = None

    runs = [SimpleNamespace(info=SimpleNamespace(run_id=f"abcdef{i}" * 4)) for i in (1, 2)]

    class Client:
        def get_run(self, run_id):
            raise MlflowException(f"Run with id={run_id} not found")

        def search_experiments(self):
            return [SimpleNamespace(experiment_id="1")]

        def search_runs(self, experiment_ids, query, **kwargs):
            assert query == "attributes.run_id LIKE 'abcdef%'"
            return Page(runs)

    with pytest.raises(
        StratifyInputError, match=r"^run 'abcdef': ambiguous prefix, matches runs abcdef1"
    ):
        queries._get_run(Client(), "abcdef")


@pytest.mark.parametrize("where", ["nowhere/mlruns", "empty-folder"])
def test_a_missing_store_is_an_error_and_is_not_created(tmp_path, where):
    (tmp_path / "empty-folder").mkdir()
    target = tmp_path / where
    with pytest.raises(
        StratifyInputError, match=rf"^--store: no MLflow store at {re.escape(str(target))} "
    ):
        queries.compare_runs(target, experiment="mirocals")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty-folder"]


def test_a_missing_sqlite_file_is_an_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(StratifyInputError, match="no such file"):
        queries.compare_runs(uri, experiment="x")
    assert list(tmp_path.iterdir()) == []


def test_default_store_is_mlruns_of_the_project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(
        StratifyInputError, match=f"no MLflow store at {re.escape(str(tmp_path))}/mlruns "
    ):
        _cli("--experiment", "mirocals")
    assert not (tmp_path / "mlruns").exists()


def test_cli_refuses_csv_on_stdout_with_json(synthetic):
    with pytest.raises(StratifyInputError, match=r"^--csv: '-' .*cannot go with --json"):
        _cli("--store", str(synthetic.folder), "-e", "trial-a", "--json", "--csv", "-")


def test_a_learner_run_whose_parent_was_deleted(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with tracker.run("trial", run_name="cfg-ddddddd", tags=_hash("d")) as parent:
        child = _child(tracker, "trial", parent, "d", "t_small", "t_learner", {})
    tracker.client.delete_run(parent)
    with pytest.raises(StratifyInputError, match="has no learner runs of a finished run "):
        queries.compare_runs(store, experiment="trial")  # an orphan is not part of a finished run
    frame = queries.compare_runs(store, run_ids=[child])
    assert list(frame["run_id"]) == [child]
    assert frame["label"].iloc[0] == "t_small"  # read off the (deleted) parent run's name
    with pytest.raises(StratifyInputError, match=f"^run '{parent}': no such run in this store$"):
        queries.compare_runs(store, run_ids=[parent])


def test_a_reader_that_goes_away_is_no_traceback(synthetic):
    """`stratify compare --json | head -1`: stdout closes before the JSON is written."""
    script = (
        "import argparse, sys; from stratify.cli import compare as c; "
        "p = argparse.ArgumentParser(); c.add_parser(p.add_subparsers()); "
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
    )
    argv = ["compare", "--store", str(synthetic.folder), "-e", "trial-a", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # before the child has even imported mlflow
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == cmp.EXIT_BROKEN_PIPE
    assert err == b""


def test_an_unreachable_tracking_server_is_one_line():
    # nothing listens on port 9 (discard) on loopback: one line, within seconds
    import argparse
    import time

    from stratify.cli import compare as module

    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", "--store", "http://127.0.0.1:9", "-e", "mirocals"])
    # the tracker's health check answers first, in seconds, naming the option
    expected = r"^--store: no MLflow tracking server answers at http://127.0.0.1:9: "
    start = time.monotonic()
    with pytest.raises(StratifyInputError, match=expected):
        args.handler(args)
    assert time.monotonic() - start < 30  # MLflow's own retries alone take about 4 minutes
