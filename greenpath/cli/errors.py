"""The command line's own error: a user error, printed as one line with exit status 2.

Its own module so that the commands (``greenpath.cli.commands``) import it without
importing back from the entry point (``greenpath.cli``), which imports the commands.
"""

from __future__ import annotations


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""
