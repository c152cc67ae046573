"""``python -m jobwait``: dispatch to the command line in :mod:`jobwait.adapters.cli`."""

import sys

# mypy checks src/ and adapters/ as separate roots and cannot map jobwait.adapters.
from jobwait.adapters.cli import main  # type: ignore[import-not-found, unused-ignore]

sys.exit(main())
