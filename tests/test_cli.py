"""The `stratify` command: exit codes, one-line errors without tracebacks, atomic outputs."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stratify.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_run_prints_results_and_where_to_look(store, capsys):
    code = main(["run", str(ROOT / "configs" / "gbsg2.yaml"), f"tracking.uri={store}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "gbsg2: 686 patients used (246 treated, 440 control), 299 events" in out
    assert "MLflow run" in out
    assert f"--backend-store-uri sqlite:///{store}/mlflow.db" in out


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
    assert not (store / "artifacts" / "x").exists()


def test_hazard_ratios_keep_the_digits_that_matter():
    from stratify.cli import _hr
    from stratify.trial import HazardRatio

    assert _hr(HazardRatio(1.00035, 1.00017, 1.00053, 0.00013)) == (
        "1.00035 (1.00017–1.00053), p = 0.00013"
    )
    assert _hr(HazardRatio(0.971, 0.633, 1.49, 0.89)) == "0.971 (0.633–1.490), p = 0.89"
    assert _hr(HazardRatio(0.29, 0.14, 0.63, 0.0016), p=False) == "0.29 (0.14–0.63)"
    nan = float("nan")
    assert _hr(HazardRatio(nan, nan, nan, nan)) == "not estimable"
