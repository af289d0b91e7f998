"""Side-by-side timing of stratify's causal survival forest and grf's, on the same trial.

Each round times, one after the other on the same machine, (a) grf 2.6's
``causal_survival_forest`` (R, C++; ``W.hat = 0.5``, RMST to 640 days, its defaults:
2,000 trees, little bags of 2, nuisance survival forests of 500 trees) plus
``predict(estimate.variance = TRUE)`` for the out-of-bag estimates and variances, and
(b) ``CausalSurvivalForest`` with the same tree settings, fitted for both estimands
(two forests, the RMST and the survival difference; grf's call grows one), whose fit
computes the out-of-bag estimates and variances. Rounds alternate the order, so that a
load change on a shared machine hits both. Each side runs in a fresh process: wall time
and the CPU time of the process (children included for R) are recorded, with the
1-minute load before the round.

grf is optional: it is taken from ``R_LIBS`` (build it as ``../shared/grf_reference``'s
README says); without it only stratify's side is timed.

Usage::

    R_LIBS=/path/to/grf_lib python experiments/csf_timing.py \\
        --file ../shared/grf_reference/data/sim_mirocals_n2000_s1.csv --rounds 3 \
        --modifier csf_pnfh

With ``--modifier`` each round also times (c) the forest locally linear in that column (the
default when a config names a modifier; ``ll_lambda: auto`` tries every penalty of its grid
out of bag). It prints one row per run and the median ratio of each stratify side's wall and
CPU time to grf's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

R_SCRIPT = textwrap.dedent(
    """
    suppressPackageStartupMessages(library(grf))
    args <- commandArgs(trailingOnly = TRUE)
    d <- read.csv(args[1], stringsAsFactors = TRUE)
    drop <- c("time", "event", "arm", "tau_rmst", "tau_surv")
    X <- model.matrix(~ . - 1, data = d[, setdiff(names(d), drop), drop = FALSE])
    t0 <- proc.time()
    forest <- causal_survival_forest(X, Y = d$time, W = d$arm, D = d$event, W.hat = 0.5,
                                     target = "RMST", horizon = 640, num.trees = 2000,
                                     seed = 1, num.threads = 2)
    p <- predict(forest, estimate.variance = TRUE)
    t1 <- proc.time() - t0
    rmse <- sqrt(mean((p$predictions - d$tau_rmst)^2))
    cat(sprintf('{"wall": %.3f, "cpu": %.3f, "rmse": %.4f}\\n', t1[["elapsed"]],
                t1[["user.self"]] + t1[["sys.self"]] + t1[["user.child"]] + t1[["sys.child"]],
                rmse))
    """
)

PY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, pandas as pd
    from sksurv.util import Surv
    from stratify.learners import CausalSurvivalForest
    d = pd.read_csv(sys.argv[1])
    X = d.drop(columns=["time", "event", "arm", "tau_rmst", "tau_surv"])
    X = pd.get_dummies(X, columns=["el_escorial"], dtype=float)
    y = Surv.from_arrays(d["event"].astype(bool), d["time"])
    # load the compiled routines before timing (a first call in a process reads numba's cache)
    CausalSurvivalForest(horizon=640.0, n_estimators=2, random_state=0).fit(X[:200], y[:200],
        d["arm"].to_numpy()[:200])
    wall, cpu = time.perf_counter(), time.process_time()
    modifier = sys.argv[2] or None  # "": grf's algorithm; a column: locally linear in it
    model = CausalSurvivalForest(
        horizon=640.0, n_estimators=2000, n_jobs=2, random_state=1, modifier=modifier
    )
    model.fit(X, y, d["arm"].to_numpy())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rmse = float(np.sqrt(np.mean((model.oob_cate_["cate_rmst"] - d["tau_rmst"]) ** 2)))
    print(json.dumps({"wall": wall, "cpu": cpu, "rmse": rmse}))
    """
)


def run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def has_grf() -> bool:
    if shutil.which("Rscript") is None:
        return False
    check = subprocess.run(
        ["Rscript", "-e", "library(grf)"], capture_output=True, text=True, check=False
    )
    return check.returncode == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True, help="a reference trial CSV")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--modifier", default="", help="also time the forest locally linear in this column"
    )
    args = parser.parse_args(argv)
    grf = has_grf()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        r_file, py_file = Path(tmp, "grf.R"), Path(tmp, "csf.py")
        r_file.write_text(R_SCRIPT)
        py_file.write_text(PY_SCRIPT)
        sides = {
            "stratify": [sys.executable, str(py_file), str(args.file), ""],
            "grf": ["Rscript", str(r_file), str(args.file)],
        }
        if args.modifier:
            sides["stratify-corrected"] = [*sides["stratify"][:-1], args.modifier]
        for k in range(args.rounds):
            order = list(sides) if k % 2 == 0 else list(reversed(sides))
            for side in order:
                if side == "grf" and not grf:
                    continue
                load = os.getloadavg()[0]
                result = run(sides[side])
                rows.append({"round": k, "side": side, "load": load, **result})
                print(json.dumps(rows[-1]), flush=True)
    if grf:
        for side in (s for s in sides if s != "grf"):
            for what in ("wall", "cpu"):
                ratios = [
                    next(r[what] for r in rows if r["round"] == k and r["side"] == side)
                    / next(r[what] for r in rows if r["round"] == k and r["side"] == "grf")
                    for k in range(args.rounds)
                ]
                print(f"median {what} ratio {side} / grf: {np.median(ratios):.2f} {ratios}")


if __name__ == "__main__":
    main()
