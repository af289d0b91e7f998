"""Do two commits estimate the same benefit, bit for bit?

Saves, for the code on ``PYTHONPATH`` (or this checkout), the causal survival
forest's out-of-bag estimates and standard errors on every design of
``../shared/grf_reference`` (seeds 1-2, 500 trees) and one cross-fitting
(5 folds x 2 repeats, 2 workers) of every learner of ``configs/mirocals.yaml``
with its per-fold risk metrics; ``--compare`` then checks two such folders.
For changes meant to be pure speed-ups: if everything is identical, the
accuracy tables measured before still hold.

Usage::

    git worktree add --detach /tmp/old OLD_COMMIT
    PYTHONPATH=/tmp/old/src python experiments/same_estimates.py /tmp/est_old
    python experiments/same_estimates.py /tmp/est_new
    python experiments/same_estimates.py --compare /tmp/est_old /tmp/est_new
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sksurv.util import Surv

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "grf_reference" / "data"
DESIGNS = [
    "sim_mirocals_n220", "sim_none_n220", "sim_common_n220", "sim_mirocals_n2000",
    "sim_none_n2000", "sim_common_n2000", "grf_simple1_n1000", "grf_type2_n1000",
]  # fmt: skip
SIMULATED = ["age", "bulbar_onset", "delta_fs", "svc", "csf_pnfh"]


def save(out: Path) -> None:
    """Write every estimate of this code to ``out``."""
    from stratify.config import load_config
    from stratify.data.source import load_trial
    from stratify.learners import CausalSurvivalForest
    from stratify.validation.crossfit import NamedLearner, cross_fit

    out.mkdir(parents=True, exist_ok=True)
    for design in DESIGNS:
        for seed in (1, 2):
            frame = pd.read_csv(REFERENCE / f"{design}_s{seed}.csv")
            simulated = design.startswith("sim")
            columns = SIMULATED if simulated else [c for c in frame if c.startswith("x")]
            horizon = 640.0 if simulated else float(np.quantile(frame["time"], 0.9))
            forest = CausalSurvivalForest(
                horizon=horizon, random_state=seed, n_estimators=500,
                modifier="csf_pnfh" if simulated else None,
            )  # fmt: skip
            y = Surv.from_arrays(frame["event"].astype(bool), frame["time"])
            forest.fit(frame[columns].astype(float), y, frame["arm"].to_numpy())
            np.save(out / f"{design}_s{seed}.npy", forest.oob_cate_.to_numpy())
    config = load_config(ROOT / "configs" / "mirocals.yaml", ["cv.repeats=2"])
    data = load_trial(config)
    learners = [NamedLearner(s.run_label, s.name, dict(s.params)) for s in config.learners]
    fits = cross_fit(
        learners, data, horizon=config.horizon, folds=5, repeats=2, seed=config.seed, n_jobs=2
    )
    for label, fit in fits.items():
        np.save(out / f"crossfit_{label}.npy", fit.estimates)
        fit.fold_metrics.to_csv(out / f"crossfit_{label}_metrics.csv", index=False)


def compare(old: Path, new: Path) -> int:
    """Print every file that differs; the number of them."""
    differ = 0
    files = sorted(p.name for p in new.iterdir())
    for name in files:
        if name.endswith(".npy"):
            same = np.array_equal(np.load(old / name), np.load(new / name), equal_nan=True)
        else:
            same = pd.read_csv(old / name).equals(pd.read_csv(new / name))
        if not same:
            differ += 1
            print(f"differs: {name}")
    print(f"{len(files) - differ} of {len(files)} identical")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        raise SystemExit(1 if compare(*args.folders) else 0)
    save(args.folders[0])


if __name__ == "__main__":
    main()
