"""``python -m adk``: the ``adk`` command (:mod:`adk.cli`)."""

import sys

from adk.cli import main

sys.exit(main())
