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
    tokens = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(tokens)
    after = getattr(args, "passes_options_on", None)
    if after:
        # everything after the subcommand's last word goes on untouched and in order (argparse
        # would move options it does not know to the end)
        args.options = tokens[tokens.index(after, tokens.index(args.command) + 1) + 1:]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
