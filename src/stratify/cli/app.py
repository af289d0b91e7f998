"""The ``stratify`` command: run, validate, simulate, ui, compare, study, server.

This module owns argument parsing and what the user sees in the terminal. Bad
input (a :class:`~stratify.exceptions.StratifyInputError`) is printed as one
line, ``error: ...``, with exit status 2 and no traceback. A failure of the
machine rather than of the input (a worker process that died, a store that
failed while recording: :class:`~stratify.pipeline.execution.WorkerLostError`,
:class:`~stratify.tracking.tracker.StoreError`) is one line too, with exit status 1.
Ctrl-C and SIGTERM print ``interrupted`` and exit 130. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from stratify import __version__
from stratify.cli import compare
from stratify.exceptions import StratifyInputError
from stratify.files import write_atomically
from stratify.formatting import hazard_ratio, names, p_is, p_value
from stratify.pipeline import study
from stratify.tracking import server

EXIT_FAILURE = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stratify`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except StratifyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not _is_failure(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_failure(exc: Exception) -> bool:
    """Whether ``exc`` is a failure of the machine (a worker process that died, a store that
    failed while recording), told in one line, rather than a bug."""
    from stratify.pipeline.execution import WorkerLostError
    from stratify.tracking.tracker import StoreError

    return isinstance(exc, WorkerLostError | StoreError)


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler, ``timeout``, ``kill``) stops like Ctrl-C: open runs end KILLED."""
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratify",
        description="Who benefits? Treatment-effect heterogeneity in randomised survival trials.",
    )
    parser.add_argument("--version", action="version", version=f"stratify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run an experiment config and track it in MLflow")
    _config_args(run)
    run.add_argument(
        "--report", type=Path, metavar="PATH", help="also write the run's HTML report to PATH"
    )
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check a config and its data without running")
    _config_args(validate)
    validate.set_defaults(handler=_cmd_validate)

    sim = sub.add_parser("simulate", help="write a simulated trial to CSV or Parquet")
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
    sim.set_defaults(handler=_cmd_simulate)

    ui = sub.add_parser("ui", help="browse tracked runs in the MLflow UI (loopback only)")
    ui.add_argument("config", nargs="?", type=Path, help="a config whose store to open")
    ui.add_argument("--store", help="store folder or tracking URI (default: ./mlruns)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    ui.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    ui.set_defaults(handler=_cmd_ui)

    compare.add_parser(sub)
    study.add_parser(sub)
    server.add_parser(sub)
    return parser


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment YAML file")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. seed=3"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from stratify.config import load_config
    from stratify.data.source import load_trial

    config = load_config(args.config, args.overrides)
    data = load_trial(config)  # before the heavy imports: a bad file is reported at once
    from stratify.pipeline.experiment import run

    print(f"{config.name}: {data.summary()}", flush=True)
    result = run(config, data=data, report=args.report)
    print(summarise(result.analysis))
    if result.evaluation is not None:
        print("\n" + summarise_learners(result.evaluation))
    if result.explained is not None:
        print("\n" + summarise_explained(result.explained))
    print(f"\nMLflow run {result.run_id} in experiment '{config.experiment_name}'")
    uri = config.tracking_uri
    if uri.startswith(("http://", "https://")):
        print(f"  browse it:  {uri}")
    else:
        print(f"  browse it:  stratify ui --store {uri}")
        print(f"        or:  {result.store.ui_command()}")
    print("  report:     report.html in the run's artifacts", end="")
    print(f"; written to {result.report_path}" if result.report_path else "")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from stratify.config import load_config
    from stratify.data.source import load_trial

    config = load_config(args.config, args.overrides)
    data = load_trial(config)  # before the heavy imports: a bad file is reported at once
    from stratify.pipeline.experiment import analyse, check_learners

    check_learners(config, data)  # each learner's parameters against its table, as run does
    analyse(config, data)
    print(f"{args.config}: valid. {data.summary()}")
    print(f"  treated arm: {data.arm_labels[1]!r}, control arm: {data.arm_labels[0]!r}")
    print(f"  adjusted for: {', '.join(data.adjusted_for) or '(nothing)'}")
    if data.modifier:
        print(f"  modifier: {data.modifier}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
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


def _cmd_ui(args: argparse.Namespace) -> int:
    from stratify.config import load_config, project_root
    from stratify.tracking.tracker import Store, Tracker

    if args.config is not None:
        uri = load_config(args.config).tracking_uri
    else:
        uri = args.store or str(project_root(Path.cwd() / "stratify.yaml") / "mlruns")
    if uri.startswith(("http://", "https://")):
        print(f"that store is a tracking server already: open {uri} in a browser")
        return 0
    store = Tracker(Store.from_uri(uri)).store  # schema created before the server starts
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri]
    if store.artifact_root is not None:
        cmd += ["--default-artifact-root", store.artifact_root.as_uri()]
    cmd += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    print(f"starting the MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    return subprocess.call(cmd)


def summarise_learners(evaluation) -> str:
    """One line per learner (out-of-fold), then the run's heterogeneity verdict."""
    reports = evaluation.learners.values()
    truth = all("cate_rmse" in r.metrics for r in reports)
    width = max([20, *(len(r.label) for r in reports)])
    head = (
        f"{'learner':<{width}} {'mean benefit':>12} {'C (Harrell)':>11} "
        f"{'RATE AUTOC (SE)':>16} {'het. p':>7}"
    )
    lines = [head + ("   RMSE vs truth  Spearman" if truth else "")]
    for r in reports:
        m = r.metrics
        autoc = f"{m['rate_autoc']:.1f} ({m['rate_autoc_se']:.1f})"
        row = (
            f"{r.label:<{width}} {m['cate_rmst_mean']:>+9.1f} d {m['c_index_harrell']:>11.3f} "
            f"{autoc:>16} {p_value(m['heterogeneity_p'], 3):>7}"
        )
        if truth:
            row += f"   {m['cate_rmse']:>10.1f} d  {m['cate_spearman']:>8.2f}"
        lines.append(row)
    lines.append(
        f"Heterogeneity (one verdict for all learners): {p_is(evaluation.heterogeneity_p, 3)}"
        f"  [{evaluation.heterogeneity_method}]"
    )
    return "\n".join(lines)


def summarise_explained(explained) -> str:
    """Where the modifier ranks for benefit in each learner, and the crossover finding."""
    lines = []
    first = next(iter(explained.learners.values()))
    if first.modifier is not None:
        p = len(first.importance())
        ranks = ", ".join(
            f"{label} {x.metrics()['modifier_rank']:.0f}" for label, x in explained.learners.items()
        )
        lines.append(f"Rank of {first.modifier} in mean |SHAP of benefit| (of {p}): {ranks}")
    from stratify.report.summary import finding

    if found := finding(explained):
        lines.append(found)
    return "\n".join(lines)


def summarise(analysis) -> str:
    """The trial analysis as a short clinical summary for the terminal."""
    h = f"{analysis.horizon:g}"
    c, t = analysis.control, analysis.treated
    d = analysis.rmst_diff

    def hr(estimate) -> str:
        return hazard_ratio(estimate, with_p=True)

    lines = [
        f"Survival at {h} days (KM):  control ({c.label}) {c.surv:.1%} "
        f"({c.surv_ci_low:.1%}–{c.surv_ci_high:.1%}),  treated ({t.label}) {t.surv:.1%} "
        f"({t.surv_ci_low:.1%}–{t.surv_ci_high:.1%})",
        f"RMST to {h} days, treated − control:  {d.estimate:+.1f} days "
        f"({d.ci_low:+.1f} to {d.ci_high:+.1f}), {p_is(d.p)}",
        f"Log-rank:  chi² = {analysis.logrank_chisq:.2f}, {p_is(analysis.logrank_p)}",
        f"HR treated vs control, unadjusted:  {hr(analysis.hr_unadjusted)}",
        f"HR adjusted for {names(analysis.cox_adjusted.terms[1:])}:  {hr(analysis.hr_adjusted)}",
    ]
    m = analysis.modifier
    if analysis.cox_interaction is not None:
        inter = analysis.interaction_hr
        lines += [
            f"Arm × {m} interaction:  HR ratio {hazard_ratio(inter)} per unit of {m}, "
            f"{p_is(inter.p)}",
            f"  arm HR at {m} = 0 (interaction model):  {hr(analysis.hr_interaction_arm)}",
        ]
    for s in analysis.strata:
        row = f"  {m} {s.label}:  n = {s.n}, {s.events} events,  HR {hr(s.hr)}"
        lines.append(row + (f"  [{s.note}]" if s.note else ""))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
