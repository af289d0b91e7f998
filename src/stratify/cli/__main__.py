"""``python -m stratify.cli``: the ``stratify`` command."""

import sys

from stratify.cli.app import main

sys.exit(main())
