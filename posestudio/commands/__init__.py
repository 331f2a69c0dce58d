"""Subcommands of the ``posestudio`` command.

Each module here defines ``register(subparsers)`` that adds one subcommand whose parser sets
``func`` (called with the parsed arguments, returning an exit status). Modules are found
automatically, so a new subcommand is one new file.
"""
