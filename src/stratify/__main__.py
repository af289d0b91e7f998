"""``python -m stratify``: the ``stratify`` command."""

import sys

from stratify.cli.app import main

sys.exit(main())
