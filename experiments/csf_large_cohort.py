"""The causal survival forest on a large cohort: time, memory, model size and accuracy.

Fits ``CausalSurvivalForest`` once on ``simulate_cohort(n, p, seed)`` of
``experiments/large_cohort.py`` (the design of BENCHMARKS.md's "Large cohorts": 1:1 trial,
Weibull proportional hazards, an effect that reverses with ``x4``, horizon 730 days) on 2
threads, and prints the fit's wall and CPU seconds (nuisances, both forests, out-of-bag
estimates and variances), the peak RSS of the process, the pickled model's size, the trees'
mean node count, and the out-of-bag RMSE and 95 % interval coverage of ``cate_rmst`` against
the simulator's truth.

Usage::

    python experiments/csf_large_cohort.py --n 50000 \\
        --params '{"n_estimators": 200, "sample_fraction": 0.1, "min_node_size": 20}'
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_cohort import HORIZON, simulate_cohort

from stratify.learners import CausalSurvivalForest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--p", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="{}", help="JSON of CausalSurvivalForest params")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    X, y, arm, truth = simulate_cohort(args.n, args.p, args.seed)
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    model = CausalSurvivalForest(horizon=HORIZON, random_state=args.seed, n_jobs=2, **params)
    model.fit(X, y, arm)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tau = truth["rmst1"] - truth["rmst0"]
    oob = model.oob_cate_
    covered = np.abs(oob["cate_rmst"] - tau) <= 1.96 * oob["cate_rmst_se"]
    row = {
        "n": args.n,
        "p": args.p,
        "params": params,
        "load": round(load, 2),
        "fit_wall_s": round(wall, 1),
        "fit_cpu_s": round(cpu, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "model_mb": round(len(pickle.dumps(model)) / 1e6, 1),
        "nodes_per_tree": round(len(model.forests_["cate_rmst"].feature) / model.n_estimators),
        "rmse_cate_rmst_d": round(float(np.sqrt(np.mean((oob["cate_rmst"] - tau) ** 2))), 1),
        "coverage_95": round(float(covered.mean()), 3),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
