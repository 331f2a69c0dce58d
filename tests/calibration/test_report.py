"""The calibration report: typed in code, written as the JSON docs/calibration.md documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
from posestudio.calibration.report import CalibrationReport, write_report_json, write_report_png
from posestudio.commands.calibrate import summary
from posestudio.synthetic.board_detections import observe, smooth_board_path
from posestudio.synthetic.studio_rig import ring_rig

BOARD = BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50")
DOC = Path(__file__).resolve().parents[2] / "docs" / "calibration.md"


def documented_keys() -> set[str]:
    """Top-level keys named in the first column of the report table of docs/calibration.md."""
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`(\w+)`", row.split("|")[1])}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, tuple[CalibrationReport, dict]]:
    """A calibration with offsets and an intrinsics-only one of the same detections, and their JSON."""
    dets = observe(ring_rig(), BOARD, smooth_board_path(0, extent_m=2.0, speed=1.5), 60, 30.0,
                   offsets_s=[0.0, 0.004, -0.006, 0.010], noise_px=0.2, seed=3)
    out = tmp_path_factory.mktemp("reports")
    result = {}
    for name, opts in (("full", CalibrationOptions()), ("intrinsics", CalibrationOptions(intrinsics_only=True))):
        rep = calibrate_from_detections(dets, BOARD, opts, fps=30.0, progress=None).report
        write_report_json(rep, out / f"{name}.json")
        result[name] = (rep, json.loads((out / f"{name}.json").read_text()))
    write_report_png(result["full"][0], out / "full.png")
    assert (out / "full.png").read_bytes()[:4] == b"\x89PNG"
    return result


def test_the_json_has_the_documented_keys(reports) -> None:
    _, doc = reports["full"]
    assert set(doc) == documented_keys() - {"scene_points", "inputs"}  # neither was given here
    assert doc["format"] == "posestudio-calibration-report" and doc["format_version"] == 1
    for cam in doc["cameras"].values():
        assert {"reprojection_rms_px", "corners_used", "focal_px", "centre_m", "time_offset_ms"} <= set(cam)
        assert "distortion" not in cam
        assert np.asarray(cam["coverage"]).shape == (9, 16)


def test_attributes_and_json_agree(reports) -> None:
    rep, doc = reports["full"]
    assert doc["reference_camera"] == rep.reference_camera
    for name, off in rep.time_offsets.items():
        assert doc["time_offsets"][name] == {"frames": off.frames, "ms": off.ms, "std_ms": off.std_ms}
        assert doc["cameras"][name]["time_offset_ms"] == off.ms == rep.cameras[name].time_offset_ms
    assert doc["board_size_error"]["mean_abs_mm"] == rep.board_size_error.mean_abs_mm
    assert doc["adjustment"]["corners"] == rep.adjustment.corners == sum(c.corners_used for c in rep.cameras.values())
    assert list(doc["timing_s"]) == list(rep.timing_s.stages())


def test_an_intrinsics_only_report_leaves_the_extrinsic_sections_out(reports) -> None:
    rep, doc = reports["intrinsics"]
    assert rep.board_size_error is None and rep.time_offsets is None
    assert set(doc) == {"format", "format_version", "board", "options", "timing_s", "warnings", "cameras"}
    for cam in doc["cameras"].values():
        assert len(cam["distortion"]) == 5 and "centre_m" not in cam
    assert "board-size error" not in summary(rep)


def test_the_terminal_summary_reads_the_report(reports) -> None:
    rep, _ = reports["full"]
    text = summary(rep)
    for name, cam in rep.cameras.items():
        assert re.search(rf"^{name}\s+\d+\s+\d+\.\d+", text, re.M), name
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        assert f"{cam.focal_px[0]:.2f} ±{cam.focal_std_px[0]:.2f}" in line
    assert "board-size error: mean" in text and "with the time offsets applied" in text
