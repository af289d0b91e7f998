"""The ``stratify`` command (:func:`main`); each subcommand's parser and handler.

Importing this package does not import MLflow: subcommands import what they use.
"""

from stratify.cli.app import main

__all__ = ["main"]
