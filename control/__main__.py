"""`python -m control ...`: see `control.cli`."""

import sys

from control.cli import entry, main  # noqa: F401  (main: the command line as a function, for tests)

if __name__ == "__main__":
    sys.exit(entry())
