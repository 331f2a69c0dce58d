"""posestudio: multi-camera markerless motion capture (calibration, capture, reconstruction)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from posestudio import __version__

#: Exceptions whose message is meant for the user: printed without a traceback, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand in :mod:`posestudio.commands`."""
    import posestudio.commands as commands

    parser = argparse.ArgumentParser(
        prog="posestudio", description=__doc__,
        epilog="Run 'posestudio COMMAND --help' for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"posestudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"posestudio.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``posestudio`` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "passes_options_on", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.options = list(getattr(args, "options", []) or []) + extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"posestudio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posestudio {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
