"""``python -m greenpath.cli``: the `greenpath` command line."""

import sys

from greenpath.cli import main

sys.exit(main())
