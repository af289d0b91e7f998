"""``stratify study``: the parser and handler of the simulation-study command.

What a study is, how it resumes and what it logs: :mod:`stratify.pipeline.study`
(imported only when the command runs, so that ``stratify --help`` stays fast).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify study`` on the ``stratify`` command's subparsers."""
    p = subparsers.add_parser(
        "study",
        help="run a config over many simulated trials (resumable), tracked as one MLflow run",
        description="Repeat a config's analysis on study.replicates simulated trials, on the "
        "configured backend. Rerunning the same command continues where it stopped.",
    )
    p.add_argument("config", type=Path, help="experiment YAML file with data.simulate")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. study.replicates=1000")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify study`` from parsed arguments; 0 on success."""
    from stratify.config import load_config
    from stratify.config.schema import StudyConfig
    from stratify.pipeline.study import FAILED, rejection_lines, run_study

    config = load_config(args.config, args.overrides)
    study = config.study or StudyConfig()
    sim = config.data.simulate
    design = f"{sim.design} design, n = {sim.n}, effect {sim.effect}" if sim else "no design"
    print(f"{config.name} study: {study.replicates:,} simulated trials ({design})", flush=True)
    result = run_study(config)
    print(
        f"{result.new:,} replicates run now, {result.resumed:,} already in the store; "
        f"{len(result.replicates):,} in all"
    )
    failed = int(result.replicates[FAILED].sum()) if FAILED in result.replicates else 0
    if failed:
        print(f"{failed} replicates could not be analysed (tag stratify.study_failures)")
    print(f"\nRejection rate at alpha = {study.alpha:g} (exact 95 % CI):")
    for line in rejection_lines(result.summary):
        print(f"  {line}")
    coverage = result.summary[result.summary["metric"] == "rmst_diff_covers_truth"]
    if len(coverage):
        print(
            f"  coverage of the true RMST difference by its 95 % CI: {coverage['mean'].iloc[0]:.3f}"
        )
    print(f"\nMLflow run {result.run_id} in experiment '{config.experiment_name}'")
    print("  all metrics: tables/study_summary.csv; one row per trial: tables/replicates.csv")
    return 0
