"""CLI subcommands.

Every module here with a ``register(subparsers)`` function is a `greenpath`
subcommand (discovered at start-up, so features add commands without editing the
dispatcher).
"""
