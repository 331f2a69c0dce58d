"""posestudio: multi-camera markerless motion capture (calibration, capture, reconstruction)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

import posestudio.commands as commands
from posestudio import __version__
from posestudio.core.errors import PoseStudioError

#: Exit status of a problem the user can fix (bad input, missing file), and of a bug in PoseStudio.
EXIT_USER_ERROR = 2
EXIT_BUG = 1


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand in :mod:`posestudio.commands`."""
    parser = argparse.ArgumentParser(
        prog="posestudio", description=__doc__,
        epilog="Run 'posestudio COMMAND --help' for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"posestudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"posestudio.commands.{info.name}")
        module.register(sub)
    return parser


def command_words(parser: argparse.ArgumentParser, tokens: list[str]) -> str:
    """The subcommand words of a command line (``"rig convert"``), as argparse names them."""
    words = []
    for token in tokens:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or token not in subparsers[0].choices:
            if token.startswith("-"):
                continue
            break
        words.append(token)
        parser = subparsers[0].choices[token]
    return " ".join(words)


def user_error_message(exc: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None when ``exc`` is a bug.

    A :class:`PoseStudioError` says what is wrong itself; an :class:`OSError` that names a file
    (missing input, unwritable output, full disk) is the user's environment. Anything else is a
    bug in PoseStudio.
    """
    if isinstance(exc, PoseStudioError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        what = (exc.strerror or str(exc)).lower()
        if exc.filename2 is not None:
            return f"{exc.filename} -> {exc.filename2}: {what}"
        return f"{exc.filename}: {what}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``posestudio`` console script; returns the exit status.

    A user error prints one line ``posestudio COMMAND: error: ...`` (exit status 2); any other
    exception prints its traceback and asks for a bug report (exit status 1).
    """
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
    name = f"posestudio {command_words(parser, tokens) or args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every exception ends here: one line, or a bug report
        message = user_error_message(exc)
        if message is not None:
            print(f"{name}: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        traceback.print_exc()
        print(f"{name}: internal error: this is a bug in PoseStudio {__version__}; please report it with the "
              "command you ran and the traceback above.", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
