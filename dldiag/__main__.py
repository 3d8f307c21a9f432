"""``python -m dldiag`` — see :mod:`dldiag.cli`."""

import sys

from .cli import main

sys.exit(main())
