"""A simulation study killed mid-way and resumed: nothing lost, nothing twice.

Starts ``stratify study CONFIG`` (by default the 1,000-replicate MIROCALS study on a
Dask ``LocalCluster``, ``configs/mirocals_study.yaml``) in its own process group,
waits until ``--kill-after`` replicates are in the store, kills the whole group
(the study process and its Dask workers) with SIGKILL, then runs the same command
again and checks that the study finished in the same MLflow run with every
replicate logged exactly once. Prints the timings and the study's own summary.

Usage::

    python experiments/study_resume.py --store /tmp/study-store --kill-after 300
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from stratify.pipeline.study import DONE
from stratify.tracking.tracker import Store, Tracker

ROOT = Path(__file__).resolve().parents[1]


def _command(config: Path, store: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "stratify.cli", "study", str(config), f"tracking.uri={store}",
            *overrides]  # fmt: skip


def _study_run(store: Path, experiment: str):
    client = Tracker(Store.from_uri(str(store))).client  # locked: safe while a study starts
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return client, runs


def _done(client, run_id: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, DONE)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "mirocals_study.yaml")
    parser.add_argument("--store", type=Path, required=True, help="a new store folder")
    parser.add_argument("--kill-after", type=int, default=300, help="replicates before the kill")
    parser.add_argument("--experiment", default="mirocals-study")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. study.replicates=200")
    args = parser.parse_args(argv)
    env = os.environ | {"STRATIFY_PROGRESS": "0"}
    cmd = _command(args.config, args.store, args.overrides)

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    run_id = None
    while proc.poll() is None:
        time.sleep(1.0)
        client, runs = _study_run(args.store, args.experiment)
        if runs and len(_done(client, runs[0].info.run_id)) >= args.kill_after:
            run_id = runs[0].info.run_id
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    killed_at = time.perf_counter() - start
    if run_id is None:
        sys.exit(f"the study ended (exit {proc.returncode}) before {args.kill_after} replicates")
    client, runs = _study_run(args.store, args.experiment)
    before = len(set(_done(client, run_id)))
    status = client.get_run(run_id).info.status
    print(f"killed (SIGKILL to the process group) after {killed_at:.0f} s: "
          f"{before} replicates in the store, run {run_id} left {status}")  # fmt: skip

    start = time.perf_counter()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    print(f"rerun of the same command: exit {resumed.returncode} after {elapsed:.0f} s")
    print(resumed.stdout)
    if resumed.returncode != 0:
        sys.exit(resumed.stderr)
    client, runs = _study_run(args.store, args.experiment)
    counts = Counter(_done(client, run_id))
    print(f"runs in the experiment: {len(runs)} ({', '.join(r.info.status for r in runs)})")
    print(f"replicates logged: {len(counts)}, logged more than once: "
          f"{sum(c > 1 for c in counts.values())}, steps {min(counts)}–{max(counts)}")  # fmt: skip


if __name__ == "__main__":
    main()
