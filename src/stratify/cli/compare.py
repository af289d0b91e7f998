"""``stratify compare``: tracked runs × metrics, as a terminal table, JSON or CSV.

Rows are the learner runs (the nested runs ``stratify run`` makes, one per
learner) of an experiment, or of the run ids given; a parent run id stands for
its learners. Columns are the chosen metrics exactly as MLflow stores them; a
metric ``m`` brings its companion ``m_sd`` (standard deviation over the
cross-validation folds × repeats, for ``c_index_harrell``, ``c_index_uno`` and
``ibs``) or ``m_se`` (bootstrap standard error, e.g. ``rate_autoc``) when the
runs logged one. ``cate_rmst_sd`` is the spread of the estimated benefit over
patients, a metric of its own, not a companion.

The store is only read: a folder without an MLflow store is an error, never a
new, empty store. The runs are read by :mod:`stratify.tracking.queries` and
shown by :mod:`stratify.report.comparison`; this module is the command's
parser and handler.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stratify.exceptions import StratifyInputError
from stratify.report.comparison import print_table, to_json, write_csv
from stratify.tracking.queries import DEFAULT_METRICS, DEFAULT_SORT, compare

EXIT_BROKEN_PIPE = 141
"""Exit status when stdout is closed early, as a shell reports a command killed by SIGPIPE."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify compare`` on the ``stratify`` command's subparsers."""
    p = subparsers.add_parser(
        "compare",
        help="compare tracked runs: runs × metrics as a table, JSON or CSV",
        description="Compare the learner runs of an experiment (or the runs given) on chosen "
        "metrics: mean ± SD over folds (± SE for bootstrap standard errors), best first.",
    )
    p.add_argument(
        "run_ids", nargs="*", metavar="RUN_ID", help="runs (a parent run stands for its learners)"
    )
    p.add_argument("--runs", metavar="IDS", help="more run ids, comma-separated")
    p.add_argument(
        "--experiment", "-e", metavar="NAME", help="compare the learner runs of this experiment"
    )
    p.add_argument("--config", type=Path, help="a config whose store and experiment to compare")
    p.add_argument("--store", help="store folder or tracking URI (default: ./mlruns)")
    p.add_argument(
        "--metrics",
        "-m",
        metavar="LIST",
        help=f"comma-separated metric names or globs (default: {', '.join(DEFAULT_METRICS)})",
    )
    p.add_argument(
        "--sort",
        metavar="KEY",
        help=f"METRIC, METRIC:asc or METRIC:desc (default: {DEFAULT_SORT}, best first)",
    )
    p.add_argument("--all", action="store_true", help="also list the parent runs")
    p.add_argument("--json", action="store_true", help="print JSON (only JSON) to stdout")
    p.add_argument("--csv", metavar="PATH", help="write CSV to PATH ('-': stdout)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify compare`` from parsed arguments; 0 on success.

    Raises
    ------
    StratifyInputError
        Bad arguments, store, experiment, run ids or metrics (the CLI prints it).
    """
    if args.json and args.csv == "-":
        raise StratifyInputError("--csv: '-' (stdout) cannot go with --json; give a file")
    run_ids = list(args.run_ids) + _split(args.runs)
    uri, experiment = _store_and_experiment(args, run_ids)
    from mlflow.exceptions import MlflowException

    try:
        comparison = compare(
            uri,
            experiment=experiment,
            run_ids=run_ids,
            metrics=_split(args.metrics) if args.metrics is not None else None,
            sort=args.sort,
            include_parents=args.all,
        )
    except MlflowException as exc:  # e.g. an unreachable server or an outdated schema
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StratifyInputError(f"--store: cannot read {uri}: {first}") from None
    if args.csv and args.csv != "-":
        write_csv(comparison.frame, args.csv)
        print(f"wrote {len(comparison.frame)} runs to {args.csv}", file=sys.stderr)
    try:
        if args.csv == "-":
            comparison.frame.to_csv(sys.stdout, index=False)
        elif args.json:
            print(to_json(comparison.frame))
        else:
            print_table(comparison)
        sys.stdout.flush()
    except BrokenPipeError:  # `stratify compare --json | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return 0


def _store_and_experiment(args: argparse.Namespace, run_ids: list[str]) -> tuple[str, str | None]:
    """``--store`` (else the config's store, else ``./mlruns`` of the project) and the
    experiment (``--experiment``, else the config's unless run ids are given)."""
    from stratify.config import load_config, project_root

    experiment = args.experiment
    if args.config is not None:
        config = load_config(args.config)
        uri = args.store or config.tracking_uri
        if experiment is None and not run_ids:
            experiment = config.experiment_name
    else:
        uri = args.store or str(project_root(Path.cwd() / "stratify.yaml") / "mlruns")
    return uri, experiment


def _split(text: str | None) -> list[str]:
    if text is None:
        return []
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise StratifyInputError(f"empty list '{text}': give comma-separated names")
    return items
