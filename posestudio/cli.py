"""The ``posestudio`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from posestudio import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="posestudio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"posestudio {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    args = parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
