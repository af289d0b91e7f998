"""``stratify simulate``: write a simulated trial to CSV or Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

from stratify.exceptions import StratifyInputError
from stratify.files import write_atomically


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify simulate`` on the ``stratify`` command's subparsers."""
    sim = subparsers.add_parser("simulate", help="write a simulated trial to CSV or Parquet")
    sim.add_argument("--design", default="mirocals", help="simulator design (default: mirocals)")
    sim.add_argument("--n", type=int, default=220, help="patients (default: 220)")
    sim.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    sim.add_argument(
        "--effect", default="mirocals", help="mirocals | none | common (default: mirocals)"
    )
    sim.add_argument(
        "--horizon", type=float, default=640.0, help="horizon of tau_rmst/tau_surv, days"
    )
    sim.add_argument("--out", required=True, type=Path, help="output file (.csv or .parquet)")
    sim.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify simulate``: write a simulated trial to the file ``--out``; 0."""
    from stratify.data.simulate import simulate

    suffix = args.out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise StratifyInputError(f"--out: use a .csv or .parquet file name (got '{args.out}')")
    frame = simulate(
        args.design, n=args.n, seed=args.seed, horizon=args.horizon, effect=args.effect
    )
    _write_table(frame, args.out)
    print(f"wrote {len(frame)} patients to {args.out}")
    return 0


def _write_table(frame, out: Path) -> None:
    """CSV or Parquet by suffix, all or nothing."""
    to_file = frame.to_parquet if out.suffix.lower() == ".parquet" else frame.to_csv
    write_atomically(out, lambda tmp: to_file(tmp, index=False), what="--out: cannot write")
