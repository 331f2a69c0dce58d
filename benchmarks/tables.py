"""Plain-text tables the benchmarks print: columns padded to their widest cell."""

from __future__ import annotations


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print ``header`` and ``rows`` (cells already formatted) as aligned columns with a rule."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
