"""Printable calibration targets at exact physical size (PNG with DPI metadata, or PDF).

The page is laid out in millimetres (origin at the page's top-left corner, y down), then drawn:

* PNG: one grayscale image of the whole page at ``dpi``; the DPI is stored in the PNG's
  ``pHYs`` chunk, so printing it at 100 % gives the right size. The pattern is drawn by
  :meth:`BoardSpec.render`, whose total size is exact to half a pixel (0.042 mm at 300 dpi).
* PDF: a page whose MediaBox is the paper size in points; the pattern is an image placed with a
  transform that scales it to exactly ``squares_x * square_length`` by
  ``squares_y * square_length``; the caption is PDF text. The catalog asks viewers to print at
  actual size (``/PrintScaling /None``).

A caption outside the pattern states the board type, sizes in mm, the dictionary and that it must
be printed at 100 %. Inverted boards (white on black) get a black quiet zone around the pattern,
as a real inverted print has.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from .board import BoardSpec
from .errors import BoardError

MM_PER_INCH = 25.4
PT_PER_INCH = 72.0
#: Paper sizes ``(width, height)`` in millimetres, portrait.
PAPER_SIZES_MM: dict[str, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "letter": (215.9, 279.4),
    "a3": (297.0, 420.0),
}
#: Papers tried by ``paper="auto"``, in order.
AUTO_PAPERS = ("a4", "letter", "a3")
CAPTION_LINE_MM = 4.5      # caption line pitch, mm
CAPTION_GAP_MM = 3.0       # gap between the pattern (quiet zone) and the caption, mm
INVERTED_QUIET_SQUARES = 0.1  # black quiet zone around an inverted pattern, in squares


@dataclass(frozen=True)
class PrintOptions:
    """How to print a board (``posestudio board`` reads its defaults here).

    Attributes:
        dpi: drawing resolution, dots per inch (72 to 1200).
        paper: ``"auto"`` (the first of :data:`AUTO_PAPERS` that holds the board) or a key of
            :data:`PAPER_SIZES_MM`.
        margin_mm: blank border kept around the board and caption, millimetres (0 to 200).
    """

    dpi: float = 300.0
    paper: str = "auto"
    margin_mm: float = 10.0


@dataclass(frozen=True)
class PageLayout:
    """Where things go on the page; all lengths in millimetres, origin top-left, y down.

    Attributes:
        paper: paper name (``"a4"``...) or ``"custom"`` when the board did not fit.
        page_mm: ``(width, height)`` of the page.
        pattern_mm: ``(width, height)`` of the pattern (squares only).
        pattern_origin_mm: top-left corner of the pattern on the page.
        quiet_mm: width of the quiet zone drawn around the pattern (inverted boards; else 0).
        caption_origin_mm: left end of the first caption line's baseline.
        caption: caption lines.
        warnings: messages for the user (board does not fit the paper...).
    """

    paper: str
    page_mm: tuple[float, float]
    pattern_mm: tuple[float, float]
    pattern_origin_mm: tuple[float, float]
    quiet_mm: float
    caption_origin_mm: tuple[float, float]
    caption: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def board_caption(board: BoardSpec) -> tuple[str, ...]:
    """The caption lines printed under the pattern (type, sizes in mm, dictionary, 100 %)."""
    sq = board.square_length * 1000
    w, h = (v * 1000 for v in board.size_m)
    if board.type == "charuco":
        extras = (", printed inverted (white on black)" if board.inverted else "") + \
                 (", legacy layout" if board.legacy else "")
        first = (f"ChArUco {board.squares_x} x {board.squares_y} squares, square {sq:.1f} mm, "
                 f"marker {board.marker_length * 1000:.1f} mm, {board.dictionary}{extras}")
    else:
        first = (f"Checkerboard {board.squares_x} x {board.squares_y} squares "
                 f"({board.corners_x} x {board.corners_y} inner corners), square {sq:.1f} mm"
                 + (", printed inverted" if board.inverted else ""))
    second = (f"Print at 100 % (actual size, no 'fit to page'). Check with a ruler: one square = {sq:.1f} mm, "
              f"pattern = {w:.1f} x {h:.1f} mm.")
    return first, second


def _footprint_mm(board: BoardSpec, margin_mm: float) -> tuple[float, float, float]:
    """``(width, height, quiet)`` mm the board needs on paper: pattern, quiet zone, caption, margins."""
    quiet = INVERTED_QUIET_SQUARES * board.square_length * 1000 if board.inverted else 0.0
    w = board.size_m[0] * 1000 + 2 * quiet + 2 * margin_mm
    h = board.size_m[1] * 1000 + 2 * quiet + 2 * margin_mm + CAPTION_GAP_MM + 2 * CAPTION_LINE_MM
    return w, h, quiet


def _fit(paper_mm: tuple[float, float], need: tuple[float, float]) -> tuple[float, float] | None:
    """The paper's orientation (portrait first) that holds ``need``, or None."""
    for page in (paper_mm, paper_mm[::-1]):
        if need[0] <= page[0] + 1e-9 and need[1] <= page[1] + 1e-9:
            return page
    return None


def layout_page(board: BoardSpec, paper: str = PrintOptions.paper, margin_mm: float = PrintOptions.margin_mm
                ) -> PageLayout:
    """Choose the page and place the pattern (centred) and its caption.

    Args:
        board: the board to print.
        paper: ``"a4"``, ``"letter"``, ``"a3"`` or ``"auto"`` (the first of A4, Letter, A3 that fits).
        margin_mm: blank paper kept around everything (printers cannot print to the edge), mm.
    Returns:
        The layout. When the board does not fit the paper, the page is enlarged to a custom size
        that holds it (still at exact scale) and ``warnings`` says so.
    """
    if paper != "auto" and paper not in PAPER_SIZES_MM:
        raise BoardError(f"paper {paper!r} is not known; expected one of auto, {', '.join(PAPER_SIZES_MM)}")
    if not 0 <= margin_mm < 200:
        raise BoardError(f"margin {margin_mm} mm is out of range; expected 0 to 200 mm")
    need_w, need_h, quiet = _footprint_mm(board, margin_mm)
    warnings: list[str] = []
    chosen: tuple[str, tuple[float, float]] | None = None
    for name in (AUTO_PAPERS if paper == "auto" else (paper,)):
        page = _fit(PAPER_SIZES_MM[name], (need_w, need_h))
        if page is not None:
            chosen = (name, page)
            break
    if chosen is None:
        tried = AUTO_PAPERS[-1] if paper == "auto" else paper
        pw, ph = PAPER_SIZES_MM[tried]
        # Largest square_length that would fit the paper in either orientation.
        extra_w, extra_h = need_w - board.size_m[0] * 1000, need_h - board.size_m[1] * 1000
        best = 0.0
        for page_w, page_h in ((pw, ph), (ph, pw)):
            per_sq = min((page_w - extra_w) / board.squares_x, (page_h - extra_h) / board.squares_y)
            best = max(best, per_sq)
        warnings.append(
            f"{board.source}: the board ({board.size_m[0] * 1000:.1f} x {board.size_m[1] * 1000:.1f} mm, "
            f"plus {margin_mm:g} mm margins and the caption) does not fit on {tried.upper()} paper "
            f"({pw:g} x {ph:g} mm) in either orientation; the page was enlarged to "
            f"{need_w:.1f} x {need_h:.1f} mm: print it at 100 % on larger paper, or make square_length "
            f"at most about {max(best, 0) / 1000:.4f} m in the board file to fit {tried.upper()}")
        chosen = ("custom", (need_w, need_h))
    name, (page_w, page_h) = chosen
    pat_w, pat_h = board.size_m[0] * 1000, board.size_m[1] * 1000
    x0 = (page_w - pat_w) / 2
    block_h = need_h - 2 * margin_mm  # pattern + quiet zone + caption
    y0 = (page_h - block_h) / 2 + quiet
    caption_origin = (x0 - quiet, y0 + pat_h + quiet + CAPTION_GAP_MM + CAPTION_LINE_MM * 0.8)
    return PageLayout(name, (page_w, page_h), (pat_w, pat_h), (x0, y0), quiet, caption_origin,
                      board_caption(board), tuple(warnings))


# ---------------------------------------------------------------------------------------- PNG
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_dpi(image: NDArray[np.uint8], dpi: float) -> bytes:
    """Encode ``image`` (``(H, W)`` or ``(H, W, 3)`` uint8) as PNG with a ``pHYs`` chunk for ``dpi``.

    ``pHYs`` stores whole pixels per metre, so the stored DPI is ``round(dpi / 0.0254) * 0.0254``
    (300 dpi is stored as 11811 px/m = 299.9994 dpi).
    """
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise BoardError("could not encode the PNG image")
    data = buf.tobytes()
    # Signature (8 bytes) + IHDR chunk (4 + 4 + 13 + 4 bytes); pHYs must come before IDAT.
    end_ihdr = 8 + 25
    chunks = data[8:]
    pos, kept = 0, []
    while pos < len(chunks):  # drop any pHYs the encoder wrote
        length = struct.unpack(">I", chunks[pos:pos + 4])[0]
        chunk = chunks[pos:pos + 12 + length]
        if chunk[4:8] != b"pHYs":
            kept.append(chunk)
        pos += 12 + length
    data = data[:8] + b"".join(kept)
    ppm = int(round(dpi / (MM_PER_INCH / 1000)))
    phys = _png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
    return data[:end_ihdr] + phys + data[end_ihdr:]


def read_png_dpi(data: bytes) -> tuple[float, float] | None:
    """The ``(x, y)`` DPI stored in a PNG's ``pHYs`` chunk, or None when it has none (or no unit)."""
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        if kind == b"pHYs":
            px, py, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            return (px * 0.0254, py * 0.0254) if unit == 1 else None
        if kind == b"IDAT":
            return None
        pos += 12 + length
    return None


def _put_caption(img: NDArray[np.uint8], lines: tuple[str, ...], origin_px: tuple[float, float],
                 max_width_px: float, line_px: float) -> None:
    """Draw caption lines (black) onto ``img`` in place; text height about 0.55 of a line."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, h1), _ = cv2.getTextSize("Ag", font, 1.0, 1)
    for i, line in enumerate(lines):
        scale = 0.55 * line_px / h1
        (w, _), _ = cv2.getTextSize(line, font, scale, 1)
        if w > max_width_px:
            scale *= max_width_px / w
        thick = max(1, int(round(scale * 1.6)))
        org = (int(round(origin_px[0])), int(round(origin_px[1] + i * line_px)))
        cv2.putText(img, line, org, font, scale, 0, thick, cv2.LINE_AA)


def render_page(board: BoardSpec, layout: PageLayout, dpi: float) -> NDArray[np.uint8]:
    """The whole page as a ``(H, W)`` uint8 image at ``dpi`` (white paper, black ink).

    The pattern's top-left corner lies on a whole pixel, so the pattern is exactly
    ``BoardSpec.render``'s output (size exact to half a pixel).
    """
    px_per_mm = dpi / MM_PER_INCH
    page = np.full((int(round(layout.page_mm[1] * px_per_mm)), int(round(layout.page_mm[0] * px_per_mm))),
                   255, np.uint8)
    pattern = board.render(dpi / (MM_PER_INCH / 1000))
    x0, y0 = (int(round(v * px_per_mm)) for v in layout.pattern_origin_mm)
    if layout.quiet_mm > 0:
        q = int(round(layout.quiet_mm * px_per_mm))
        page[max(0, y0 - q):y0 + pattern.shape[0] + q, max(0, x0 - q):x0 + pattern.shape[1] + q] = 0
    page[y0:y0 + pattern.shape[0], x0:x0 + pattern.shape[1]] = pattern
    avail = layout.page_mm[0] - 2 * layout.caption_origin_mm[0]
    _put_caption(page, layout.caption, tuple(v * px_per_mm for v in layout.caption_origin_mm),
                 avail * px_per_mm, CAPTION_LINE_MM * px_per_mm)
    return page


# ---------------------------------------------------------------------------------------- PDF
def _pdf_text(s: str) -> str:
    """A PDF literal string (Latin-1 text) with ``\\``, ``(`` and ``)`` escaped."""
    s = s.encode("latin-1", "replace").decode("latin-1")
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _mm_to_pt(v: float) -> float:
    return v / MM_PER_INCH * PT_PER_INCH


def pdf_document(board: BoardSpec, layout: PageLayout, dpi: float) -> bytes:
    """A one-page PDF: MediaBox = the page in points; the pattern image scaled to its exact size.

    The pattern is drawn at ``dpi`` (``BoardSpec.render``) and placed with the transform
    ``[w 0 0 h x y] cm`` where ``w``, ``h`` are the pattern's exact size in points
    (``squares_x * square_length / 0.0254 * 72``...), so its squares measure ``square_length``
    whatever the pixel rounding.
    """
    page_w, page_h = (_mm_to_pt(v) for v in layout.page_mm)
    pattern = board.render(dpi / (MM_PER_INCH / 1000))
    pw, ph = (_mm_to_pt(v) for v in layout.pattern_mm)
    px = _mm_to_pt(layout.pattern_origin_mm[0])
    py = page_h - _mm_to_pt(layout.pattern_origin_mm[1]) - ph
    ops: list[str] = []
    if layout.quiet_mm > 0:
        q = _mm_to_pt(layout.quiet_mm)
        ops.append(f"0 g {px - q:.4f} {py - q:.4f} {pw + 2 * q:.4f} {ph + 2 * q:.4f} re f")
    ops.append(f"q {pw:.4f} 0 0 {ph:.4f} {px:.4f} {py:.4f} cm /Im1 Do Q")
    line_pt = _mm_to_pt(CAPTION_LINE_MM)
    avail = page_w - 2 * _mm_to_pt(layout.caption_origin_mm[0])
    cx = _mm_to_pt(layout.caption_origin_mm[0])
    for i, line in enumerate(layout.caption):
        size = 0.62 * line_pt
        approx_width = 0.52 * size * len(line)  # Helvetica's mean advance is about 0.5 em
        if approx_width > avail:
            size *= avail / approx_width
        cy = page_h - _mm_to_pt(layout.caption_origin_mm[1]) - i * line_pt
        ops.append(f"0 g BT /F1 {size:.3f} Tf {cx:.4f} {cy:.4f} Td {_pdf_text(line)} Tj ET")
    content = "\n".join(ops).encode("latin-1")
    image = zlib.compress(np.ascontiguousarray(pattern).tobytes(), 9)
    title = f"PoseStudio calibration board ({Path(board.source).name})"

    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R /ViewerPreferences << /PrintScaling /None >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w:.4f} {page_h:.4f}] "
         f"/Resources << /XObject << /Im1 4 0 R >> /Font << /F1 5 0 R >> >> /Contents 6 0 R >>").encode(),
        (f"<< /Type /XObject /Subtype /Image /Width {pattern.shape[1]} /Height {pattern.shape[0]} "
         f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Interpolate false /Filter /FlateDecode "
         f"/Length {len(image)} >>\nstream\n").encode() + image + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
        f"<< /Title {_pdf_text(title)} /Producer (PoseStudio) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


# ---------------------------------------------------------------------------------------- entry
def write_board_print(board: BoardSpec, out: str | Path, options: PrintOptions | None = None) -> PageLayout:
    """Write a printable target to ``out`` (``.png`` or ``.pdf``) and return its layout.

    Args:
        board: the board to print.
        out: output path; its suffix chooses the format.
        options: resolution, paper and margin (default :class:`PrintOptions`).
    Returns:
        The page layout; its ``warnings`` are for the user.
    """
    options = options or PrintOptions()
    dpi = options.dpi
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".png", ".pdf"):
        raise BoardError(f"{out}: output must end in .png or .pdf, got {out.suffix or 'no suffix'!r}")
    if not 72 <= dpi <= 1200:
        raise BoardError(f"dpi {dpi:g} is out of range; expected 72 to 1200 dots per inch")
    if not out.parent.is_dir():
        raise BoardError(f"{out}: folder {out.parent} does not exist")
    layout = layout_page(board, options.paper, options.margin_mm)
    if kind == ".png":
        pixels = int(round(layout.page_mm[0] * dpi / MM_PER_INCH)) * int(round(layout.page_mm[1] * dpi / MM_PER_INCH))
        if pixels > 400e6:
            raise BoardError(f"{out}: a {layout.page_mm[0]:.0f} x {layout.page_mm[1]:.0f} mm page at {dpi:g} dpi "
                             f"is {pixels / 1e6:.0f} megapixels; lower --dpi or write a PDF")
        out.write_bytes(png_with_dpi(render_page(board, layout, dpi), dpi))
    else:
        out.write_bytes(pdf_document(board, layout, dpi))
    return layout
