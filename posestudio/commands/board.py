"""``posestudio board``: write a printable calibration board (PNG or PDF) at exact size."""

from __future__ import annotations

import argparse
import sys

from posestudio.calibration.board import load_board
from posestudio.calibration.board_print import AUTO_PAPERS, PAPER_SIZES_MM, PrintOptions, write_board_print

EPILOG = """\
example:
  posestudio board studio_configs/board_charuco_a1.toml --out board.pdf
  posestudio board my_board.toml --out board.png --paper a4 --dpi 600 --margin-mm 5

Print the file at 100 % ("actual size", never "fit to page"), then check one square with a ruler:
it must measure square_length from the board file. Glue the print flat onto a rigid board.
--paper auto takes the first of A4, Letter, A3 that holds the board; when the board fits none
(or not the paper you named) the page is enlarged to fit and a warning says so.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``board`` subcommand; its defaults are :class:`PrintOptions`'."""
    d = PrintOptions()
    p = subparsers.add_parser(
        "board", help="write a printable calibration board (PNG or PDF) at exact physical size",
        description="Write a calibration board described by a board TOML file as a PNG (DPI stored in "
                    "the file) or a PDF (page and pattern sized in points), with a caption giving the "
                    "board type, sizes in mm and the dictionary.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("board", metavar="BOARD.toml", help="board description file ([board] table)")
    p.add_argument("--out", required=True, metavar="FILE.png|FILE.pdf",
                   help="output file; the suffix chooses PNG or PDF")
    p.add_argument("--dpi", type=float, default=d.dpi, help=f"drawing resolution, dots per inch (default {d.dpi:g})")
    p.add_argument("--paper", choices=("auto", *PAPER_SIZES_MM), default=d.paper,
                   help=f"paper size (default {d.paper}: first of {', '.join(AUTO_PAPERS)} that fits)")
    p.add_argument("--margin-mm", type=float, default=d.margin_mm,
                   help=f"blank border kept around the board and caption, mm (default {d.margin_mm:g})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the board; warnings go to stderr; returns the exit status."""
    board = load_board(args.board)
    layout = write_board_print(board, args.out, PrintOptions(dpi=args.dpi, paper=args.paper,
                                                             margin_mm=args.margin_mm))
    for warning in layout.warnings:
        print(f"posestudio board: warning: {warning}", file=sys.stderr)
    w, h = layout.pattern_mm
    paper = "custom" if layout.paper == "custom" else layout.paper.upper()
    orient = "landscape" if layout.page_mm[0] > layout.page_mm[1] else "portrait"
    print(f"wrote {args.out}: {board.type} pattern {w:.1f} x {h:.1f} mm on {paper} {orient} "
          f"({layout.page_mm[0]:.1f} x {layout.page_mm[1]:.1f} mm) - print at 100 %, "
          f"one square = {board.square_length * 1000:.1f} mm")
    return 0
