"""Calibration report files: JSON (everything) and PNG (one page a person can read at a glance)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if not math.isfinite(v) else v
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report_json(report: dict, path: str | Path) -> None:
    """Write the report as JSON (NaN written as null), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(report), indent=1))
    tmp.replace(path)


def write_report_png(report: dict, path: str | Path) -> None:
    """One-page summary: per-camera reprojection RMS, time offsets, coverage heat maps, board-size error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cams = report.get("cameras", {})
    names = list(cams)
    n = max(len(names), 1)
    fig = plt.figure(figsize=(4 * max(n, 3), 9), dpi=90)
    grid = fig.add_gridspec(2, max(n, 3), height_ratios=[1, 1.1])

    ax = fig.add_subplot(grid[0, 0])
    rms = [cams[c].get("reprojection_rms_px") or cams[c].get("intrinsic_rms_px") or 0.0 for c in names]
    ax.bar(names, rms, color="#4477aa")
    ax.set_ylabel("reprojection RMS (px)")
    ax.set_title("reprojection error per camera")

    ax = fig.add_subplot(grid[0, 1])
    offs = report.get("time_offsets", {})
    if offs:
        vals = [offs[c]["ms"] for c in names]
        errs = [offs[c]["std_ms"] or 0.0 for c in names]
        ax.bar(names, vals, yerr=errs, color="#ee6677", capsize=4)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("time offset (ms)")
        ax.set_title(f"time offsets (reference {report.get('reference_camera', '?')})")
    else:
        ax.set_axis_off()

    ax = fig.add_subplot(grid[0, 2])
    bse = report.get("board_size_error")
    if bse and bse.get("pairs"):
        txt = (f"board-size error\n  mean {bse['mean_abs_mm']:.2f} mm\n  RMS {bse['rms_mm']:.2f} mm\n"
               f"  p95 {bse['p95_abs_mm']:.2f} mm\n  scale {bse['scale_error_percent']:+.3f} %\n"
               f"  {bse['pairs']} corner pairs in {bse['frames']} frames\n")
        aligned = report.get("board_size_error_time_aligned")
        if aligned and aligned.get("pairs"):
            txt += (f"time-aligned (offsets applied)\n  mean {aligned['mean_abs_mm']:.2f} mm, RMS "
                    f"{aligned['rms_mm']:.2f} mm\n  corner reprojection {aligned['reprojection_rms_px']:.2f} px\n")
        txt += f"\nadjustment reprojection RMS {report.get('reprojection_rms_px', float('nan')):.3f} px"
    else:
        txt = "intrinsics only: no board-size error"
    ax.text(0.02, 0.98, txt, va="top", family="monospace", fontsize=11)
    ax.set_axis_off()

    for i, c in enumerate(names):
        ax = fig.add_subplot(grid[1, i])
        cov = np.asarray(cams[c].get("coverage", [[0]]), float)
        w, h = cams[c].get("image_size", [cov.shape[1], cov.shape[0]])
        ax.imshow(cov, cmap="viridis", interpolation="nearest", extent=(0, w, h, 0))
        ax.set_title(f"{c}: corners per cell ({cams[c].get('board_frames', 0)} views)")
        ax.set_xticks([])
        ax.set_yticks([])
    warnings = report.get("warnings", [])
    if warnings:
        fig.text(0.01, 0.005, "\n".join(f"! {w}" for w in warnings[:6]), fontsize=8, va="bottom", color="#aa3377")
    fig.tight_layout(rect=(0, 0.04 + 0.015 * min(len(warnings), 6), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
