"""``stratify server``: a shared tracking server on PostgreSQL, with a Dask run logged through it.

A throwaway PostgreSQL cluster (``initdb``/``pg_ctl`` of Debian's ``postgresql`` package,
run as the ``postgres`` user when the tests run as root; loopback TCP and a Unix socket in a
temporary folder) holds the store; ``stratify server`` serves it with proxied artifacts; and
``stratify run`` with the Dask backend logs a small MIROCALS experiment to it over HTTP. The
run must arrive whole: every run FINISHED, every metric equal to the one an identical local
run in this process logs (results are bit for bit the same on any backend), every artifact
listed and downloadable through the server, and the rows in PostgreSQL itself.

Runs do not log per-fold values: each risk metric computed on the held-out folds arrives as
its mean and its standard deviation over folds × repeats (``ibs`` and ``ibs_sd``), both
checked. Without PostgreSQL's server binaries or psycopg2 those tests are skipped, saying
why; the checks that fail before a server starts run everywhere.
"""

from __future__ import annotations

import argparse
import math
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import kit
from kit import MIROCALS
from stratify.cli import app as cli
from stratify.cli import server as server_cli
from stratify.tracking import server

CONFIG = MIROCALS
SMALL = [
    *kit.SMALL,
    "heterogeneity.n_bootstrap=50",
    "explain.times=2",
    "tracking.log_models=false",
    "tracking.experiment=shared-server",
]
LEARNERS = {"t_learner", "cox_interaction"}
FOLD_METRICS = ("c_index_harrell", "c_index_uno", "ibs")
"""Computed on each held-out fold; logged as the mean, with ``_sd`` over the folds."""
PARENT_ARTIFACTS = {
    "report.html",
    "config.yaml",
    "tables/trial_analysis.csv",
    "tables/modifier_benefit.csv",
    "figures/km_by_arm.png",
    "figures/forest_plot.png",
}
LEARNER_ARTIFACTS = {
    "tables/benefit_calibration.csv",
    "tables/shap_importance.csv",
    "figures/benefit_calibration.png",
}
PG_USER, PG_DATABASE = "stratify", "mlflow"
HOST_NAME = "stratify.test"
"""A name clients would use for the server, given to ``--allowed-hosts``."""
START_TIMEOUT = 120
RUN_TIMEOUT = 300
ENV = os.environ | {"STRATIFY_PROGRESS": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
"""Subprocesses' environment: no progress bars, and no telemetry (CI has no network)."""


# --- checks that fail before anything starts -------------------------------------------------


def _stratify_server(capsys, *args: str) -> tuple[int, str]:
    """``stratify server ARGS`` in this process: exit status and stderr."""
    status = cli.main(["server", *args])
    return status, capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_bare_postgresql_uri_names_the_psycopg2_driver():
    assert server.backend_store_uri("postgresql://u@db:5432/mlflow") == (
        "postgresql+psycopg2://u@db:5432/mlflow"
    )
    for kept in ("postgresql+psycopg://u@db/mlflow", "sqlite:////srv/mlflow.db"):
        assert server.backend_store_uri(kept) == kept
    assert server.redacted("postgresql://u:pw@db/m") == "postgresql://u:***@db/m"


def test_allowed_hosts_add_to_mlflows_defaults():
    assert server.host_patterns(None, "127.0.0.1") is None  # MLflow's own defaults
    patterns = server.host_patterns("mlflow.lab.org, 203.0.113.7:5000", "127.0.0.1").split(",")
    assert patterns[:3] == ["mlflow.lab.org", "mlflow.lab.org:*", "203.0.113.7:5000"]
    assert set(server.MLFLOW_DEFAULT_HOSTS) <= set(patterns)
    name = socket.gethostname()  # the address printed for clients must not be refused
    assert {name, f"{name}:*"} <= set(server.host_patterns(None, "0.0.0.0").split(","))
    assert "[[]fd00::5]:*" in server.host_patterns(None, "fd00::5").split(",")
    assert set(server.MLFLOW_DEFAULT_HOSTS) == set(_mlflow_default_hosts())  # still MLflow's


def _mlflow_default_hosts() -> list[str]:
    """MLflow's own default allowed hosts (its module loaded alone: mlflow.server is Flask)."""
    import importlib.util

    import mlflow

    path = Path(mlflow.__file__).parent / "server" / "security_utils.py"
    spec = importlib.util.spec_from_file_location("_mlflow_security_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_default_allowed_hosts()


def test_other_stores_are_refused_in_one_line(capsys):
    status, err = _stratify_server(capsys, "--backend-store-uri", "mysql://u:pw@db/mlflow")
    assert status == cli.EXIT_INPUT
    assert err.startswith("error: --backend-store-uri: use postgresql+psycopg2://")
    assert err.count("\n") == 1 and "pw" not in err


def test_a_missing_driver_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if not installed
    status, err = _stratify_server(capsys, "--backend-store-uri", "postgresql://u@db/mlflow")
    assert status == cli.EXIT_INPUT
    assert err == (
        "error: --backend-store-uri: the database driver psycopg2 is not installed: "
        "pip install 'stratify[server]'\n"
    )


def test_an_unreachable_database_is_named_without_its_password(capsys):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (stratify[server])")
    uri = f"postgresql://alice:s3cret@127.0.0.1:{_free_port()}/mlflow"
    started = time.monotonic()
    status, err = _stratify_server(capsys, "--backend-store-uri", uri)
    assert time.monotonic() - started < server.CONNECT_TIMEOUT + 5
    assert status == cli.EXIT_INPUT
    prefix = "error: --backend-store-uri: cannot connect to postgresql+psycopg2://alice:***@"
    assert err.startswith(prefix) and err.count("\n") == 1
    assert "s3cret" not in err


def test_a_port_in_use_is_refused(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, err = _stratify_server(
            capsys,
            *("--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db"),
            *("--artifacts-destination", str(tmp_path / "artifacts")),
            *("--port", str(port)),
        )
    assert status == cli.EXIT_INPUT
    expected = f"error: --port: {port} is in use on 127.0.0.1; stop what uses it or choose"
    assert err == f"{expected} another --port\n"


def test_an_sqlite_store_needs_its_folder(capsys, tmp_path):
    uri = f"sqlite:///{tmp_path}/missing/mlflow.db"
    status, err = _stratify_server(capsys, "--backend-store-uri", uri)
    assert status == cli.EXIT_INPUT
    assert err == f"error: --backend-store-uri: no folder {tmp_path}/missing for {uri}\n"


# --- a throwaway PostgreSQL -------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """Folder of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/N/bin, or PATH."""

    def version(initdb: Path) -> int:
        name = initdb.parents[1].name
        return int(name) if name.isdigit() else 0

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _postgres_user() -> pwd.struct_passwd | None:
    """Whom PostgreSQL runs as: ``postgres`` when we are root (initdb refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root, and there is no 'postgres' user to run PostgreSQL as")


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster with one database."""

    port: int
    password: str
    socket_dir: Path

    def uri(self, scheme: str = "postgresql+psycopg2") -> str:
        return f"{scheme}://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def connect(self, database: str = PG_DATABASE, *, unix_socket: bool = False):
        """A psycopg2 connection over loopback TCP, or over the Unix socket."""
        import psycopg2

        return psycopg2.connect(
            host=str(self.socket_dir) if unix_socket else "127.0.0.1", port=self.port,
            user=PG_USER, password=self.password, dbname=database, connect_timeout=5,
        )  # fmt: skip


@pytest.fixture(scope="module")
def postgres():
    """PostgreSQL on a free loopback port (and a Unix socket), stopped and removed afterwards."""
    pytest.importorskip(
        "psycopg2", reason="psycopg2 is not installed: pip install 'stratify[server]'"
    )
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (initdb in /usr/lib/postgresql/*/bin or on "
            "PATH): apt-get install postgresql"
        )
    owner = _postgres_user()
    as_owner = ["runuser", "-u", owner.pw_name, "--"] if owner else []
    top = Path(tempfile.mkdtemp(prefix="stratify-pg-"))  # /tmp: the postgres user can reach it
    data, sockets, log = top / "data", top / "socket", top / "postgres.log"
    password = secrets.token_hex(12)
    (top / "pwfile").write_text(password + "\n")
    sockets.mkdir()
    if owner:
        for path in (top, sockets, top / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def pg(tool: str, *args: str) -> None:
        done = subprocess.run(
            [*as_owner, str(bin_dir / tool), *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            detail = log.read_text() if log.exists() else ""
            pytest.fail(f"{tool} failed: {done.stdout}{done.stderr}{detail}")

    port = _free_port()
    started = False
    try:
        pg("initdb", "-D", str(data), "-U", PG_USER, "--pwfile", str(top / "pwfile"),
           "-A", "scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        cluster = Postgres(port, password, sockets)
        connection = cluster.connect("postgres")
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        connection.cursor().execute(f"CREATE DATABASE {PG_DATABASE}")
        connection.close()
        yield cluster
    finally:
        try:
            if started:
                pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(top, ignore_errors=True)


# --- the tracking server and a run logged to it ----------------------------------------------


@dataclass(frozen=True)
class TrackingServer:
    url: str
    port: int
    artifacts: Path
    log: Path


def _get(url: str, host: str | None = None) -> int:
    """HTTP status of a GET (with another ``Host`` header if given)."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_until_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"stratify server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if _get(f"{url}/health") == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"stratify server not healthy after {START_TIMEOUT} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> list[str]:
    """SIGTERM as a scheduler would send it; what of its process group is left (killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=server.STOP_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    left = []
    for _ in range(40):  # the server's own processes stop a moment after stratify returns
        left = subprocess.run(
            ["ps", "-o", "pid=,args=", "--sid", str(proc.pid)], capture_output=True, text=True
        ).stdout.splitlines()
        if not left:
            break
        time.sleep(0.25)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    return left


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory):
    """``stratify server`` on the PostgreSQL store (given as a bare postgresql:// URI)."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    cmd = [
        *(sys.executable, "-m", "stratify.cli", "server"),
        *("--backend-store-uri", postgres.uri("postgresql")),
        *("--artifacts-destination", "artifacts"),  # relative: made absolute
        *("--port", str(port), "--workers", "1", "--allowed-hosts", HOST_NAME),
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=folder, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    left = []
    try:
        _wait_until_healthy(proc, url, log)
        yield TrackingServer(url, port, folder / "artifacts", log)
    finally:
        left = _stop(proc)
    assert not left, f"SIGTERM left server processes running (killed): {left}"
    assert proc.returncode == cli.EXIT_INTERRUPTED, log.read_text()


@dataclass(frozen=True)
class Runs:
    remote_id: str
    local: object  # stratify.pipeline.experiment.Result


@pytest.fixture(scope="module")
def runs(tracking_server, _empty_store_db, tmp_path_factory):
    """The config run with Dask against the server and, meanwhile, locally in this process."""
    from stratify.config import load_config
    from stratify.pipeline.experiment import run

    folder = tmp_path_factory.mktemp("runs")
    dask = ["execution.backend=dask", "execution.n_jobs=2", f"tracking.uri={tracking_server.url}"]
    cmd = [sys.executable, "-m", "stratify.cli", "run", str(CONFIG), *SMALL, *dask]
    remote = subprocess.Popen(
        cmd, cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its Dask workers too can be stopped on a failure
    )  # fmt: skip
    try:
        store = folder / "mlruns"
        store.mkdir()
        shutil.copy(_empty_store_db, store / _empty_store_db.name)  # schema made once
        local_overrides = [*SMALL, "execution.n_jobs=1", f"tracking.uri={store}"]
        local = run(load_config(CONFIG, local_overrides))
        output, _ = remote.communicate(timeout=RUN_TIMEOUT)
    finally:
        if remote.poll() is None:
            os.killpg(remote.pid, signal.SIGKILL)
            remote.wait()
    assert remote.returncode == 0, output
    found = re.search(r"^MLflow run ([0-9a-f]{32}) in experiment 'shared-server'$", output, re.M)
    assert found, output
    return Runs(found.group(1), local)


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _by_learner(client, parent_id: str) -> dict:
    """The learner runs nested under ``parent_id``, by learner name."""
    parent = client.get_run(parent_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    return {child.data.tags["stratify.learner"]: child for child in children}


def _pairs(runs: Runs, server: TrackingServer):
    """(name, remote run, local run) for the parent and each learner run."""
    remote, local = _client(server.url), _client(runs.local.store.tracking_uri)
    pairs = [("parent", remote.get_run(runs.remote_id), local.get_run(runs.local.run_id))]
    remote_children = _by_learner(remote, runs.remote_id)
    local_children = _by_learner(local, runs.local.run_id)
    assert set(remote_children) == set(local_children) == LEARNERS
    pairs += [(name, remote_children[name], local_children[name]) for name in sorted(LEARNERS)]
    return pairs


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_the_runs_are_finished_and_nested(runs, tracking_server):
    client = _client(tracking_server.url)
    parent = client.get_run(runs.remote_id)
    assert parent.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in parent.data.tags
    children = _by_learner(client, runs.remote_id)
    assert set(children) == LEARNERS
    assert {child.info.status for child in children.values()} == {"FINISHED"}
    assert parent.data.params["execution.backend"] == "dask"


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_every_metric_arrived_as_the_local_run_logged_it(runs, tracking_server):
    pairs = _pairs(runs, tracking_server)
    for name, remote, local in pairs:
        got, expected = remote.data.metrics, local.data.metrics
        assert got.keys() == expected.keys(), name
        differ = {k: (got[k], expected[k]) for k in expected if not _same(got[k], expected[k])}
        assert not differ, f"{name}: {differ}"
    evaluation = runs.local.evaluation  # and they are what the local run computed
    assert _same(pairs[0][1].data.metrics["heterogeneity_p"], evaluation.heterogeneity_p)
    for name, remote, _ in pairs[1:]:
        computed = evaluation.learners[name].metrics
        assert all(_same(remote.data.metrics[k], v) for k, v in computed.items()), name
        for metric in FOLD_METRICS:  # the folds' values went into each mean and SD
            assert math.isfinite(remote.data.metrics[metric]), (name, metric)
            assert math.isfinite(remote.data.metrics[f"{metric}_sd"]), (name, metric)


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_artifacts_are_listed_and_downloaded_through_the_server(runs, tracking_server, tmp_path):
    remote, local = _client(tracking_server.url), _client(runs.local.store.tracking_uri)
    for name, remote_run, local_run in _pairs(runs, tracking_server):
        run_id = remote_run.info.run_id
        assert remote_run.info.artifact_uri.startswith("mlflow-artifacts:"), name  # proxied
        listed = _artifacts(remote, run_id)
        assert listed == _artifacts(local, local_run.info.run_id), name
        expected = PARENT_ARTIFACTS if name == "parent" else LEARNER_ARTIFACTS
        assert expected <= listed, (name, expected - listed)
        got = Path(remote.download_artifacts(run_id, "", str(tmp_path / run_id)))
        mine = Path(local.download_artifacts(local_run.info.run_id, "", str(tmp_path / name)))
        for path in sorted(listed):
            data = (got / path).read_bytes()
            assert data, (name, path)
            if path.endswith(".png"):
                assert data.startswith(b"\x89PNG\r\n\x1a\n"), (name, path)
            if path.startswith("tables/"):
                assert data == (mine / path).read_bytes(), (name, path)
            kept = list(tracking_server.artifacts.glob(f"*/{run_id}/artifacts/{path}"))
            assert len(kept) == 1, (name, path)  # where --artifacts-destination said
    report = (tmp_path / runs.remote_id / "report.html").read_text(encoding="utf-8")
    assert runs.remote_id in report


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_the_rows_are_in_postgresql(runs, tracking_server, postgres):
    client = _client(tracking_server.url)
    children = _by_learner(client, runs.remote_id)
    ids = [runs.remote_id, *(child.info.run_id for child in children.values())]
    connection = postgres.connect(unix_socket=True)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid, status FROM runs WHERE run_uuid = ANY(%s)", (ids,))
        assert dict(cursor.fetchall()) == dict.fromkeys(ids, "FINISHED")
        cursor.execute(
            "SELECT run_uuid, key, count(*), min(step), max(step) FROM metrics "
            "WHERE run_uuid = ANY(%s) GROUP BY run_uuid, key",
            (ids,),
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")
    connection.close()
    logged = {(r, k) for r in ids for k in client.get_run(r).data.metrics}
    assert {(r, k) for r, k, *_ in rows} == logged
    assert {(n, lo, hi) for *_, n, lo, hi in rows} == {(1, 0, 0)}  # each metric once, step 0


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_the_server_reports_its_store_without_the_password(tracking_server, postgres):
    text = tracking_server.log.read_text()
    assert f"postgresql+psycopg2://{PG_USER}:***@127.0.0.1:{postgres.port}/{PG_DATABASE}" in text
    assert postgres.password not in text
    assert f"tracking.uri: {tracking_server.url}" in text
    assert f"artifacts:  {tracking_server.artifacts}" in text


@pytest.mark.slow  # a live PostgreSQL + tracking server (~60-100 s); CI runs it
def test_only_allowed_host_names_reach_the_api(tracking_server):
    api = f"{tracking_server.url}/api/2.0/mlflow/experiments/search?max_results=1"
    port = tracking_server.port
    assert _get(api, f"{HOST_NAME}:{port}") == 200
    assert _get(api, f"127.0.0.1:{port}") == 200
    assert _get(api, f"10.1.2.3:{port}") == 200  # MLflow's defaults are kept
    assert _get(api, f"evil.example:{port}") == 403


def test_the_parser_is_stratify_server():
    parser = argparse.ArgumentParser()
    server_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["server", "--backend-store-uri", "sqlite:///x.db"])
    assert (args.host, args.port, args.artifacts_destination) == ("127.0.0.1", 5000, "mlartifacts")
    assert args.handler is server_cli.handle
