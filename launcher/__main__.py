"""`python -m launcher` (or `byoc-launch`): the command line, in `launcher.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
