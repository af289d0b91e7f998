"""The `stratify` command: exit codes, one-line errors without tracebacks, atomic outputs."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from kit import ROOT
from stratify.cli.app import main


def test_run_prints_results_and_where_to_look(store, capsys, tmp_path):
    report = tmp_path / "reports" / "gbsg2.html"
    config = str(ROOT / "configs" / "gbsg2.yaml")
    code = main(["run", config, f"tracking.uri={store}", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "gbsg2: 686 patients used (246 treated, 440 control), 299 events" in out
    assert "MLflow run" in out
    assert f"--backend-store-uri sqlite:///{store}/mlflow.db" in out
    assert f"report:     report.html in the run's artifacts; written to {report}" in out
    # the file written locally is the artifact logged to the run
    run_id = out.split("MLflow run ")[1].split()[0]
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    logged = Path(client.download_artifacts(run_id, "report.html", str(tmp_path)))
    assert logged.read_bytes() == report.read_bytes()
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_an_unwritable_report_path_fails_before_any_run(store, capsys, tmp_path):
    config = str(ROOT / "configs" / "gbsg2.yaml")
    code = main(["run", config, f"tracking.uri={store}", "--report", str(tmp_path)])
    assert code == 2
    assert (
        capsys.readouterr().err == f"error: cannot write the report to {tmp_path}: it is a folder\n"
    )
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_validate_checks_config_and_data(capsys):
    assert main(["validate", str(ROOT / "configs" / "mirocals.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid. 220 patients used (110 treated, 110 control)" in out


def test_unknown_key_exits_2_with_one_line(capsys):
    code = main(["validate", str(ROOT / "configs" / "mirocals.yaml"), "data.simulat.n=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "unknown key 'data.simulat'; did you mean 'data.simulate'?" in err


def test_simulate_writes_csv_and_parquet(tmp_path, capsys):
    for name in ("trial.csv", "trial.parquet"):
        out = tmp_path / name
        assert main(["simulate", "--n", "60", "--seed", "1", "--out", str(out)]) == 0
        frame = pd.read_csv(out) if name.endswith("csv") else pd.read_parquet(out)
        assert len(frame) == 60
        assert {"time", "event", "arm", "csf_pnfh", "tau_rmst", "tau_surv"} <= set(frame.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial.csv", "trial.parquet"]


def test_simulate_is_deterministic(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    main(["simulate", "--seed", "5", "--out", str(a)])
    main(["simulate", "--seed", "5", "--out", str(b)])
    assert a.read_bytes() == b.read_bytes()


def test_simulate_bad_argument_leaves_no_file(tmp_path, capsys):
    out = tmp_path / "trial.csv"
    assert main(["simulate", "--n", "3", "--out", str(out)]) == 2
    assert "n" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["simulate", "--out", str(tmp_path / "trial.xlsx")]) == 2


@pytest.mark.parametrize(
    ("frame_edit", "message"),
    [
        (lambda f: f.drop(columns="arm"), "error: column 'arm' not found in the data"),
        (lambda f: f.assign(time=-1.0), "error: column 'time': times must be > 0"),
    ],
)
def test_console_script_bad_data_no_traceback(tmp_path, store, trial_frame, frame_edit, message):
    """Through a real process: exit status 2, one line on stderr, no traceback, no run."""
    frame_edit(trial_frame).to_csv(tmp_path / "t.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: x\nhorizon: 600\ndata:\n  path: t.csv\ntracking:\n  uri: {store}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "stratify.cli", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_experiment_by_name("x") is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.mark.slow  # starts the MLflow UI server: 26 s; CI runs it (`pytest -m slow`)
def test_ui_serves_runs_and_figures_on_loopback(store, capsys):
    """`stratify ui` over a store made by `stratify run`: the run, its metrics and a figure.

    The server starts while the run is made (its start, 10-40 s, is most of this test); it is
    asked for nothing until the run has ended.
    """
    import time
    import urllib.error
    import urllib.request

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "stratify.cli", "ui", "--store", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert main(["run", str(ROOT / "configs" / "gbsg2.yaml"), f"tracking.uri={store}"]) == 0
        capsys.readouterr()
        deadline = (
            time.monotonic() + 180
        )  # MLflow starts in ~10 s idle, ~40 s on a loaded 2-core box
        while True:
            try:
                found = _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 5})
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # still starting
                assert server.poll() is None, "the UI server exited"
                assert time.monotonic() < deadline, "the UI did not answer within 180 s"
                time.sleep(0.5)
        exp = next(e for e in found["experiments"] if e["name"] == "gbsg2")
        runs = _post(
            f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]}
        )
        (run,) = runs["runs"]
        assert run["info"]["status"] == "FINISHED"
        assert {m["key"] for m in run["data"]["metrics"]} >= {"hr_unadjusted", "logrank_p"}
        url = f"{base}/get-artifact?path=figures/forest_plot.png&run_uuid={run['info']['run_id']}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    finally:
        import os
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow  # a real run stopped by SIGTERM: 9 s; CI runs it (`pytest -m slow`)
def test_sigterm_mid_run_ends_the_run_killed(store):
    """A scheduler's SIGTERM while the run is open: exit 130 and the run is KILLED, not RUNNING.

    Logging a figure is made to hang so the signal lands while the run is open.
    """
    import os
    import signal

    script = (
        "import sys, time\n"
        "import stratify.tracking.tracker as tracking\n"
        "def hang(*args, **kwargs):\n"
        "    print('LOGGING', flush=True)\n"
        "    time.sleep(120)\n"
        "tracking.Tracker.log_figure = hang\n"
        "from stratify.cli.app import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    config = str(ROOT / "configs" / "gbsg2.yaml")
    with subprocess.Popen(
        [sys.executable, "-c", script, "run", config, f"tracking.uri={store}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        for line in proc.stdout:
            if line.strip() == "LOGGING":
                break
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("gbsg2").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == "interrupted by the user"


def test_compare_is_a_subcommand_with_one_line_errors(tmp_path, capsys):
    # the command itself is tested in test_compare.py; here: it is wired into `stratify`
    assert main(["compare", "--store", str(tmp_path / "none"), "-e", "mirocals"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --store: no MLflow store at ") and err.count("\n") == 1
    assert not (tmp_path / "none").exists()


def test_the_command_starts_without_loading_mlflow():
    # `stratify --help`, `--version`, `validate` and `simulate` need no MLflow (2 s to import)
    code = "import sys, stratify.cli.app; print('mlflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
