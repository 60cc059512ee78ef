"""``python -m tfexplain``: the command line (see ``tfexplain.cli``)."""

import sys

from .cli import main

sys.exit(main())
