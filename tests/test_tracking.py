"""The tracking layer: embedded store layout, honest run status, artifacts readable back."""

import errno
import math
import os
import signal
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from stratify.exceptions import StratifyInputError
from stratify.rendering import figure_png
from stratify.tracking.tracker import Store, StoreError, Tracker, process_tags


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
    written = {p.relative_to(root).parts[-2:]: p for p in root.rglob("*") if p.is_file()}
    assert set(written) == {("tables", "t.csv"), ("figures", "f.png")}
    # the figure's one rendering (the report embeds the same bytes)
    assert written["figures", "f.png"].read_bytes() == figure_png(figure)


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


@pytest.mark.slow  # four processes creating one store: 17 s; CI runs it (`pytest -m slow`)
def test_processes_creating_one_store_at_once_all_succeed(tmp_path):
    """Regression: MLflow's schema migration raced when a run and `stratify ui` started together
    on a new store ('No such constraint: uq_registered_models_name'). Three processes now."""
    import subprocess
    import sys

    folder = tmp_path / "mlruns"
    script = (
        "import sys; from stratify.tracking.tracker import Store, Tracker; "
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


# ---------------------------------------------------------------- runs left RUNNING


def _ended_process_tags() -> dict[str, str]:
    """The tags a run of a process that has since ended carries (its pid may be reused)."""
    import subprocess

    from stratify.tracking.processes import HOST_TAG, PID_TAG, START_TAG, process_start

    child = subprocess.Popen(["sleep", "60"])
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(child.pid)}
    tags[START_TAG] = process_start(child.pid)
    child.kill()
    child.wait()
    return tags


def _with(tags: dict[str, str], **fields: str) -> dict[str, str]:
    """``tags`` with fields of ``stratify.process_start`` replaced (boot, pidns, ticks)."""
    start = dict(part.split("=", 1) for part in tags["stratify.process_start"].split(";"))
    start |= fields
    return tags | {"stratify.process_start": ";".join(f"{k}={v}" for k, v in start.items())}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_runs_left_running_by_ended_processes_of_this_host_are_closed(store):
    tracker = Tracker(Store.from_uri(str(store)))
    exp = tracker.experiment_id("sweep")
    ended, live = _ended_process_tags(), process_tags()

    def make(tags=None, status=None) -> str:
        run_id = tracker.client.create_run(exp, tags=tags).info.run_id
        if status is not None:
            tracker.client.set_terminated(run_id, status)
        return run_id

    swept = {
        "ended": make(ended),
        "pid reused since": make(_with(live, ticks="1")),
        "host restarted since": make(_with(live, boot="another-boot")),
    }
    kept = {
        "alive": make(live),
        "another host": make(ended | {"stratify.host": "another-host"}),
        "another container": make(_with(ended, pidns="pid:[1]")),
        "not stratify's": make(),
        "closed already": make(ended, status="FAILED"),
    }
    reopened = Tracker(Store.from_uri(str(store)))
    assert sorted(reopened.swept) == sorted(swept.values())
    for run_id in swept.values():
        run = tracker.get_run(run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags["error"].startswith("the process that ran it (pid ")
        assert run.data.tags["error"].endswith(") ended without closing it")
    status = {name: tracker.get_run(run_id).info.status for name, run_id in kept.items()}
    assert status == dict.fromkeys(kept, "RUNNING") | {"closed already": "FAILED"}


def test_runs_are_tagged_with_the_process_that_runs_them(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with tracker.run("exp", run_name="r") as run_id:
        pass
    tags = tracker.get_run(run_id).data.tags
    assert {k: tags[k] for k in process_tags()} == process_tags()
    assert tags["stratify.pid"] == str(os.getpid())


def test_ctrl_c_while_the_status_is_written_comes_after_it(store, monkeypatch):
    """A Ctrl-C while the run is created or closed is held until the status is written."""
    # Ctrl-C as in a terminal, even where the tests run in the background (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_while_the_status_is_written(store, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_while_the_status_is_written(store, monkeypatch):
    tracker = Tracker(Store.from_uri(str(store)))

    def interrupted(method):
        original = getattr(tracker.client, method)

        def call(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return original(*args, **kwargs)

        monkeypatch.setattr(tracker.client, method, call)

    interrupted("set_terminated")
    with pytest.raises(KeyboardInterrupt), tracker.run("exp", run_name="finished") as run_id:
        pass
    assert tracker.get_run(run_id).info.status == "FINISHED"

    monkeypatch.undo()
    interrupted("create_run")
    with pytest.raises(KeyboardInterrupt), tracker.run("exp", run_name="created"):
        pytest.fail("the body does not run")
    [run] = tracker.client.search_runs(
        [tracker.experiment_id("exp")], filter_string="attributes.run_name = 'created'"
    )
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == "interrupted by the user"


# ---------------------------------------------------------------- a store that fails


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_an_artifact_that_cannot_be_written_fails_the_run_naming_it(store, monkeypatch):
    tracker = Tracker(Store.from_uri(str(store)))
    monkeypatch.setattr(tracker.client, "log_text", _full_disk)
    expected = (
        rf"^cannot write the artifact tables/t.csv of run \w+ to {store / 'artifacts'}: "
        "No space left on device$"
    )
    with pytest.raises(StoreError, match=expected), tracker.run("exp", run_name="r") as run_id:
        tracker.log_table(run_id, pd.DataFrame({"a": [1]}), "tables/t.csv")
    run = tracker.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("StoreError: cannot write the artifact tables/t.csv")


def test_a_run_that_the_store_cannot_close_says_so(store, monkeypatch):
    tracker = Tracker(Store.from_uri(str(store)))
    full = MlflowException(
        "(raised as a result of Query-invoked autoflush)\n"
        "(sqlite3.OperationalError) database or disk is full\n[SQL: UPDATE runs ...]",
        error_code=TEMPORARILY_UNAVAILABLE,
    )

    def database_full(*args, **kwargs):
        raise full

    monkeypatch.setattr(tracker.client, "log_batch", database_full)
    monkeypatch.setattr(tracker.client, "set_tag", database_full)
    monkeypatch.setattr(tracker.client, "set_terminated", database_full)
    expected = (
        rf"^cannot write to the MLflow store {tracker.store.tracking_uri}: database or disk is "
        r"full; run \w+ stays RUNNING \(database or disk is full\) until the next run on this "
        "store marks it KILLED$"
    )
    with pytest.raises(StoreError, match=expected), tracker.run("exp", run_name="r") as run_id:
        tracker.log_metrics(run_id, {"hr": 0.5})
    assert tracker.get_run(run_id).info.status == "RUNNING"


def test_a_wrong_call_keeps_its_own_error(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with pytest.raises(MlflowException) as caught, tracker.run("exp", run_name="r") as run_id:
        tracker.log_metrics(run_id, {"../outside": 1.0})
    assert not isinstance(caught.value, StoreError)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert tracker.get_run(run_id).info.status == "FAILED"


def test_a_tracking_server_that_does_not_answer_is_an_input_error_within_seconds(monkeypatch):
    from stratify.tracking.tracker import HTTP_DEFAULTS

    for name, value in HTTP_DEFAULTS.items():  # Tracker sets them; undone after the test
        monkeypatch.setenv(name, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(StratifyInputError, match=rf"^tracking.uri: no MLflow tracking server "
                       rf"answers at {uri}: Connection refused$"):  # fmt: skip
        Tracker(Store.from_uri(uri))
    assert time.monotonic() - started < 10


def test_a_reopened_run_is_this_process_s_and_closes_honestly(store):
    tracker = Tracker(Store.from_uri(str(store)))
    with pytest.raises(RuntimeError), tracker.run("e", run_name="r") as run_id:
        raise RuntimeError("first attempt")
    with tracker.reopen(run_id):
        assert tracker.get_run(run_id).info.status == "RUNNING"
        tracker.log_metrics(run_id, {"m": 2.0}, step=1)
    run = tracker.get_run(run_id)
    assert run.info.status == "FINISHED" and "error" not in run.data.tags
    assert {k: run.data.tags[k] for k in process_tags()} == process_tags()
    with pytest.raises(KeyboardInterrupt), tracker.reopen(run_id):
        raise KeyboardInterrupt
    run = tracker.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["error"] == "interrupted by the user"
    assert [m.step for m in tracker.client.get_metric_history(run_id, "m")] == [1]


def test_a_new_store_is_created_in_the_background_and_used_when_ready(tmp_path):
    store = Store.from_uri(str(tmp_path / "mlruns"))
    assert not store.exists
    tracker = Tracker(store, create_in_background=True)
    assert tracker.creating and tracker.swept == []
    with tracker.run("exp", run_name="r") as run_id:  # waits for the schema, then logs
        tracker.log_metrics(run_id, {"x": 1.0})
    assert not tracker.creating and store.exists
    assert tracker.get_run(run_id).info.status == "FINISHED"
    again = Tracker(Store.from_uri(str(tmp_path / "mlruns")), create_in_background=True)
    assert not again.creating  # an existing store opens at once (and sweeps orphans)


def test_a_store_that_cannot_be_created_in_the_background_fails_at_first_use(tmp_path, monkeypatch):
    def broken(store):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("stratify.tracking.store.initialised_client", broken)
    tracker = Tracker(Store.from_uri(str(tmp_path / "mlruns")), create_in_background=True)
    message = r"tracking\.uri: .*No space left on device"
    for _ in range(2):  # every use says so, with the cause
        with pytest.raises(StratifyInputError, match=message), tracker.run("exp", run_name="r"):
            pass
