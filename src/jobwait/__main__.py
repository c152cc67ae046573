"""``python -m jobwait``: dispatch to the command line in :mod:`jobwait.adapters.cli`."""

import sys

from jobwait.adapters.cli import main

sys.exit(main())
