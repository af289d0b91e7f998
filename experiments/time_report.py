"""Where the report's time goes: drawing the figures once, then building the HTML page.

Runs the MIROCALS config's analysis, learners and explanations (no MLflow), then
times, in CPU seconds of this process, ``draw_figures`` and ``build_report`` (which
embeds the figures drawn and draws none of its own).

Usage::

    python experiments/time_report.py configs/mirocals.yaml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stratify.config import load_config
from stratify.pipeline.experiment import analyse, draw_figures, learn, load_trial
from stratify.pipeline.explanation import explain_learners
from stratify.report.html import build_report
from stratify.report.run import RunResult


def cpu(fn):
    """``fn()`` and the CPU seconds it took."""
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    config = load_config(args.config, ["tracking.uri=/tmp/stratify-time-report"])
    data = load_trial(config)
    analysis, figures = analyse(config, data)
    evaluation = learn(config, data)
    explained = explain_learners(config, data, evaluation, analysis)
    drawn, t_draw = cpu(lambda: draw_figures(config, evaluation, explained))
    produced = RunResult(config, data, analysis, figures, evaluation, explained, drawn)
    page, t_build = cpu(lambda: build_report(produced))
    print(f"draw_figures: {t_draw:.2f} s CPU")
    print(f"build_report: {t_build:.2f} s CPU ({len(page) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
