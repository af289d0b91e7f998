"""The tracking layer: embedded store layout, honest run status, artifacts readable back."""

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from stratify.exceptions import StratifyInputError
from stratify.tracking import Store, Tracker


def test_folder_becomes_sqlite_store_with_artifact_root(store):
    s = Store.from_uri(str(store))
    assert s.tracking_uri == f"sqlite:///{store / 'mlflow.db'}"
    assert s.artifact_root == store / "artifacts"
    assert (store / "artifacts").is_dir()
    assert "--backend-store-uri sqlite:///" in s.ui_command()


def test_uris_are_used_as_given():
    assert Store.from_uri("sqlite:////x/y.db") == Store("sqlite:////x/y.db")
    assert Store.from_uri("http://127.0.0.1:5000").artifact_root is None


def test_uncreatable_store_folder_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StratifyInputError, match=r"tracking\.uri: cannot create the store folder"):
        Store.from_uri(str(blocker / "mlruns"))


def test_finished_run_keeps_everything_logged(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with tracker.run("exp", run_name="r", tags={"k": "v"}) as run_id:
        tracker.log_params(run_id, {f"p{i}": i for i in range(150)})
        tracker.log_metrics(run_id, {"hr": 0.5, "missing": math.nan})
        tracker.log_table(run_id, pd.DataFrame({"a": [1, 2]}), "tables/t.csv")
        figure = Figure()
        figure.add_subplot().plot([0, 1])
        tracker.log_figure(run_id, figure, "figures/f.png")
    run = tracker.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "r"
    assert run.data.tags["k"] == "v"
    assert len(run.data.params) == 150
    assert run.data.metrics["hr"] == 0.5
    assert math.isnan(run.data.metrics["missing"])
    root = store / "artifacts"
    assert run.info.artifact_uri.startswith(root.as_uri())
    written = {p.name for p in root.rglob("*") if p.is_file()}
    assert written == {"t.csv", "f.png"}


def test_failed_run_is_marked_failed_with_error_tag(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with pytest.raises(RuntimeError), tracker.run("exp", run_name="r") as run_id:
        raise RuntimeError("cox did not converge\nsecond line")
    run = tracker.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: cox did not converge"


def test_interrupted_run_is_marked_killed(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with pytest.raises(KeyboardInterrupt), tracker.run("exp", run_name="r") as run_id:
        raise KeyboardInterrupt
    assert tracker.get_run(run_id).info.status == "KILLED"


def test_experiment_is_created_once(store):
    tracker = Tracker(Store.from_uri(str(store)))
    first = tracker.experiment_id("MIROCALS study")
    assert tracker.experiment_id("MIROCALS study") == first
    assert Tracker(Store.from_uri(str(store))).experiment_id("MIROCALS study") == first


def test_processes_creating_one_store_at_once_all_succeed(tmp_path):
    """Regression: MLflow's schema migration raced when a run and `stratify ui` started together
    on a new store ('No such constraint: uq_registered_models_name'). Three processes now."""
    import subprocess
    import sys

    folder = tmp_path / "mlruns"
    script = (
        "import sys; from stratify.tracking import Store, Tracker; "
        "t = Tracker(Store.from_uri(sys.argv[1])); print(t.experiment_id('shared'))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    ids = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(ids)) == 1


def test_a_file_that_is_not_a_store_is_an_input_error(tmp_path):
    folder = tmp_path / "mlruns"
    folder.mkdir()
    (folder / "mlflow.db").write_text("not a database")
    with pytest.raises(StratifyInputError, match=r"cannot open the MLflow store .*not a database"):
        Tracker(Store.from_uri(str(folder)))


def test_deleted_experiment_is_an_input_error(store):
    tracker = Tracker(Store.from_uri(str(store)))
    tracker.client.delete_experiment(tracker.experiment_id("gone"))
    with pytest.raises(StratifyInputError, match="experiment 'gone' was deleted"):
        tracker.experiment_id("gone")
