"""``stratify validate``: check a config, its data and its learners without running."""

from __future__ import annotations

import argparse

from stratify.cli.run import config_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stratify validate`` on the ``stratify`` command's subparsers."""
    validate = subparsers.add_parser("validate", help="check a config and its data without running")
    config_args(validate)
    validate.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``stratify validate``: check the config, its data and its learners; 0 if valid."""
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
