"""``stratify run``: run an experiment config, track it in MLflow, print what it found."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify run`` on the ``stratify`` command's subparsers."""
    run = subparsers.add_parser("run", help="run an experiment config and track it in MLflow")
    config_args(run)
    run.add_argument(
        "--report", type=Path, metavar="PATH", help="also write the run's HTML report to PATH"
    )
    run.set_defaults(handler=handle)


def config_args(parser: argparse.ArgumentParser) -> None:
    """The config file and its dotted overrides, as ``run`` and ``validate`` take them."""
    parser.add_argument("config", type=Path, help="experiment YAML file")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. seed=3"
    )


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify run`` from parsed arguments: the experiment, then what it found; 0."""
    from stratify.config import load_config
    from stratify.data.source import load_trial

    config = load_config(args.config, args.overrides)
    data = load_trial(config)  # before the heavy imports: a bad file is reported at once
    from stratify.pipeline.experiment import run
    from stratify.report.terminal import summarise, summarise_explained, summarise_learners

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
