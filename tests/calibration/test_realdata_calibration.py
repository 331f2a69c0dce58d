"""PoseStudio's calibration on real recordings (../shared/data), scored as a user would score it.

* caliscope_session: four webcams filming a hand-held, inverted 4 x 5 ChArUco board. PoseStudio's
  rigs (frames paired by index, and with estimated time offsets) are compared with caliscope's own
  stored calibration on one independent set of board detections: board-size error (mm) and corner
  reprojection RMS (px).
* pose2sim_demo_single: checkerboard stills per camera; intrinsics-only calibration compared with
  the Qualisys reference calibration.
* the ``posestudio calibrate`` command line on the caliscope videos, good and bad board files.

Run with ``pytest -s`` to see the measured numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec, checkerboard, load_board
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_rig, coverage_grid, detect_sources
from posestudio.calibration.detect import BoardDetector
from posestudio.calibration.quality import BoardSizeError, board_size_error
from posestudio.calibration.rig_formats import import_rig
from posestudio.core.rig import CameraRig

from .conftest import SHARED_DATA

SESSION = SHARED_DATA / "caliscope_session"
VIDEOS = [SESSION / "videos" / f"cam_{i}.mp4" for i in range(4)]
DEMO = SHARED_DATA / "pose2sim_demo_single"
INTRINSICS = DEMO / "calibration" / "intrinsics"
POSESTUDIO = Path(sys.executable).parent / "posestudio"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                 reason=f"real data folder {SHARED_DATA} is absent (see docs: ../shared/data)")]


def need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data {path} is absent")


def toml_table(tab: dict) -> str:
    lines = ["[board]"]
    for k, v in tab.items():
        lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool)
                                  else repr(v)))
    return "\n".join(lines) + "\n"


def session_board_table() -> dict:
    """The printed board, from caliscope's ``charuco.toml`` (columns -> squares_x, cm -> m)."""
    doc = tomllib.loads((SESSION / "charuco.toml").read_text())
    square = float(doc["square_size_override_cm"]) / 100.0
    return {"type": "charuco", "squares_x": int(doc["columns"]), "squares_y": int(doc["rows"]),
            "square_length": round(square, 6), "marker_length": round(square * float(doc["aruco_scale"]), 6),
            "dictionary": str(doc["dictionary"]), "inverted": bool(doc["inverted"]), "legacy": False}


def write_board(folder: Path, name: str, **changes) -> Path:
    path = folder / name
    path.write_text(toml_table(dict(session_board_table(), **changes)))
    return path


# --------------------------------------------------------------------------- caliscope session fixtures
@pytest.fixture(scope="module")
def board_files(tmp_path_factory) -> dict[str, Path]:
    need(SESSION)
    folder = tmp_path_factory.mktemp("boards")
    return {"inverted": write_board(folder, "board.toml"),
            "upright": write_board(folder, "board_not_inverted.toml", inverted=False),
            "wrong_dict": write_board(folder, "board_wrong_dict.toml", dictionary="DICT_5X5_50")}


@pytest.fixture(scope="module")
def board(board_files) -> BoardSpec:
    b = load_board(board_files["inverted"])
    assert (b.squares_x, b.squares_y, b.dictionary, b.inverted) == (4, 5, "DICT_4X4_1000", True)
    assert b.square_length == pytest.approx(0.054) and b.marker_length == pytest.approx(0.0405)
    return b


@pytest.fixture(scope="module")
def scoring_detections(board):
    """One independent detection pass over the four videos; every rig is scored on it."""
    dets, fps = detect_sources(VIDEOS, board, progress=None)
    assert [d.name for d in dets] == ["cam_0", "cam_1", "cam_2", "cam_3"]
    assert fps == pytest.approx(6.0, abs=0.5)
    return dets


@pytest.fixture(scope="module")
def result_index(board):
    return calibrate_rig(VIDEOS, board, CalibrationOptions(sync="index"), progress=None)


@pytest.fixture(scope="module")
def result_estimate(board):
    return calibrate_rig(VIDEOS, board, progress=None)


@pytest.fixture(scope="module")
def caliscope_rig() -> CameraRig:
    need(SESSION / "config.toml")
    return import_rig(SESSION / "config.toml", "caliscope")


@pytest.fixture(scope="module")
def scores(board, scoring_detections, result_index, result_estimate, caliscope_rig) -> dict[str, BoardSizeError]:
    dets = scoring_detections
    out = {
        "caliscope (stored)": board_size_error(caliscope_rig, dets, board),
        "posestudio sync=index": board_size_error(result_index.rig, dets, board),
        "posestudio sync=estimate, index-paired": board_size_error(result_estimate.rig, dets, board),
        "posestudio sync=estimate, time-aligned": board_size_error(result_estimate.rig, dets, board,
                                                                   time_aligned=True),
    }
    print("\n[caliscope_session] scored on one independent detection pass "
          f"({sum(len(d.observations) for d in dets)} board views)")
    print(f"  {'rig':<42} {'board-size mean|err| mm':>24} {'RMS mm':>8} {'p95 mm':>8} {'reproj RMS px':>14} "
          f"{'pairs':>6}")
    for name, s in out.items():
        print(f"  {name:<42} {s.mean_abs_mm:>24.3f} {s.rms_mm:>8.3f} {s.p95_abs_mm:>8.3f} "
              f"{s.reprojection_rms_px:>14.3f} {s.pairs:>6}")
    return out


# --------------------------------------------------------------------------- caliscope session tests
def test_index_synced_rig_beats_caliscope(scores) -> None:
    ours, theirs = scores["posestudio sync=index"], scores["caliscope (stored)"]
    assert ours.pairs > 1000 and ours.pairs == theirs.pairs
    assert ours.mean_abs_mm < theirs.mean_abs_mm, (ours, theirs)
    assert ours.reprojection_rms_px < theirs.reprojection_rms_px, (ours, theirs)
    # A rig that is right to a millimetre over a 16 x 22 cm board: the scale is right too.
    assert abs(ours.scale_error_percent) < 0.5


def test_time_offset_rig_beats_both_when_time_aligned(scores) -> None:
    aligned = scores["posestudio sync=estimate, time-aligned"]
    for other in ("posestudio sync=index", "caliscope (stored)"):
        assert aligned.mean_abs_mm < scores[other].mean_abs_mm, (other, aligned, scores[other])
        assert aligned.reprojection_rms_px < scores[other].reprojection_rms_px, (other, aligned, scores[other])


def test_time_offsets_are_recorded_in_the_rig(result_index, result_estimate, tmp_path) -> None:
    rig, report = result_estimate.rig, result_estimate.report
    ref = report.reference_camera
    offsets_ms = {c.name: c.time_offset * 1000.0 for c in rig}
    print("\n[caliscope_session] estimated time offsets (ms, relative to "
          f"{ref}): " + ", ".join(f"{n} {v:+.1f} (+/- {report.time_offsets[n].std_ms or 0:.1f})"
                                  for n, v in offsets_ms.items()))
    print(f"  cam_2 - cam_3 = {offsets_ms['cam_2'] - offsets_ms['cam_3']:+.2f} ms; frame period "
          f"{1000.0 / rig.metadata['fps']:.0f} ms")
    assert offsets_ms[ref] == 0.0
    for n, v in offsets_ms.items():
        assert report.time_offsets[n].ms == pytest.approx(v, abs=0.01)
        assert report.cameras[n].time_offset_ms == pytest.approx(v, abs=0.01)
    assert any(abs(v) > 1.0 for v in offsets_ms.values())  # something was estimated
    # cam_2 and cam_3 are the same webcam model: the same latency.
    assert abs(offsets_ms["cam_2"] - offsets_ms["cam_3"]) < 5.0
    # ... and the offsets survive saving and loading the rig.
    rig.save(tmp_path / "rig.toml")
    loaded = CameraRig.load(tmp_path / "rig.toml")
    for a, b in zip(rig, loaded):
        assert b.time_offset == pytest.approx(a.time_offset, abs=1e-9)
    # sync="index" trusts the pairing: no offsets.
    assert all(c.time_offset == 0.0 for c in result_index.rig)


def test_report_has_what_a_user_reads(result_index, result_estimate, scores) -> None:
    for result in (result_index, result_estimate):
        rep = result.report
        dets = {d.name: d for d in result.detections}
        rejected_any = False
        for name, cam in rep.cameras.items():
            assert np.isfinite(cam.reprojection_rms_px) and 0 < cam.reprojection_rms_px < 1.5, (name, cam)
            grid = np.asarray(cam.coverage)
            assert grid.shape == (9, 16)
            assert grid.sum() == sum(len(o.ids) for o in dets[name].observations) > 0
            assert np.array_equal(grid, coverage_grid(dets[name]))
            rej = cam.rejected_frames
            assert rej.count == cam.frames - cam.board_frames == sum(rej.by_reason.values())
            assert all(isinstance(k, str) and k for k in rej.by_reason)
            rejected_any |= rej.count > 0
        assert rejected_any  # cam_1..cam_3 miss the board in some frames; the report says why
        bse = rep.board_size_error
        for key in ("mean_abs_mm", "rms_mm", "p95_abs_mm", "scale_error_percent", "reprojection_rms_px"):
            assert np.isfinite(getattr(bse, key)), key
        assert bse.pairs > 1000
        assert rep.adjustment.converged
    # The report's own board-size error is the independent score (same detections).
    assert result_index.report.board_size_error.mean_abs_mm == pytest.approx(
        scores["posestudio sync=index"].mean_abs_mm, rel=1e-6)
    assert result_estimate.report.board_size_error_time_aligned.mean_abs_mm == pytest.approx(
        scores["posestudio sync=estimate, time-aligned"].mean_abs_mm, rel=1e-6)
    print("\n[caliscope_session] report, sync=estimate: per-camera reprojection RMS px "
          + ", ".join(f"{n} {c.reprojection_rms_px:.3f}" for n, c in result_estimate.report.cameras.items()))
    print("  rejected frames: " + "; ".join(f"{n}: {c.rejected_frames.by_reason}"
                                           for n, c in result_estimate.report.cameras.items()))
    for w in result_estimate.report.warnings:
        print(f"  warning: {w}")


def test_inverted_board_is_found_whatever_the_board_file_says(board_files, result_index) -> None:
    # The file says inverted = true (as printed): found, and no polarity complaint.
    assert not any("polarity" in w for w in result_index.report.warnings)
    assert all(d.observations and not d.inverted_frames for d in result_index.detections)
    # The file says inverted = false: still calibrated, and the report says what to fix.
    upright = load_board(board_files["upright"])
    assert not upright.inverted
    res = calibrate_rig(VIDEOS, upright, CalibrationOptions(sync="index"), progress=None)
    polarity = [w for w in res.report.warnings if "inverted polarity" in w]
    print("\n[caliscope_session] board file inverted = false: " + (polarity[0] if polarity else "NO WARNING"))
    assert len(polarity) == 1  # one warning for the rig, not one per camera
    assert "by cameras cam_0, cam_1, cam_2, cam_3 (4 of 4)" in polarity[0]
    assert "set inverted = true in" in polarity[0]
    for name, cam in res.report.cameras.items():
        assert cam.board_frames == result_index.report.cameras[name].board_frames
        assert cam.reprojection_rms_px < 1.5
    assert res.report.board_size_error.mean_abs_mm == pytest.approx(
        result_index.report.board_size_error.mean_abs_mm, rel=0.05)


# --------------------------------------------------------------------------- pose2sim checkerboard intrinsics
def camera_number(name: str) -> int:
    return int(re.search(r"cam(\d+)", name).group(1))


def grid_homography_rms(board: BoardSpec, pixels: np.ndarray) -> float:
    """How far detected checkerboard corners are from a planar grid (px): a real detection is < 1."""
    obj = board.corner_points()[:, :2]
    h, _ = cv2.findHomography(obj, pixels, 0)
    proj = cv2.perspectiveTransform(obj.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((proj - pixels) ** 2, axis=1))))


def test_checkerboard_orientation_7x4_or_4x7() -> None:
    """Pose2Sim writes the board [4, 7]; OpenCV's detector takes either order (rows of 7 corners)."""
    need(INTRINSICS)
    img = cv2.imread(str(INTRINSICS / "int_cam01_img" / "cam01_01_int.jpg"), cv2.IMREAD_GRAYSCALE)
    for cx, cy in ((7, 4), (4, 7)):
        b = checkerboard(cx, cy, 0.06)
        obs = BoardDetector(b).detect(img).observation
        assert obs is not None and len(obs.ids) == 28, (cx, cy)
        assert grid_homography_rms(b, obs.pixels) < 1.0


def test_checkerboard_detections_are_real_grids() -> None:
    """Every accepted checkerboard detection must be a planar grid, however often it is repeated.

    cam02_05 shows the board cut by the image edge above a patterned shirt; OpenCV's
    findChessboardCornersSB (EXHAUSTIVE) draws random numbers, and on some calls it returns a
    "board" whose last row lies on the shirt. A fresh thread starts OpenCV's RNG from its fixed
    seed, so the repeated calls below see the same sequence every run.
    """
    need(INTRINSICS)
    b = checkerboard(7, 4, 0.06)
    img = cv2.imread(str(INTRINSICS / "int_cam02_img" / "cam02_05_int.jpg"), cv2.IMREAD_GRAYSCALE)
    found: list[float | None] = []

    def run() -> None:
        det = BoardDetector(b)
        for k in range(6):
            obs = det.detect(img, k).observation
            found.append(None if obs is None else grid_homography_rms(b, obs.pixels))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    print("\n[pose2sim] cam02_05 detected 6 times, grid homography RMS px: "
          + ", ".join("none" if r is None else f"{r:.1f}" for r in found))
    bad = [r for r in found if r is not None and r > 2.0]
    assert not bad, (f"BoardDetector accepted {len(bad)}/6 checkerboard detections that are not a planar grid "
                     f"(homography RMS {', '.join(f'{r:.0f}' for r in bad)} px)")


def test_pose2sim_checkerboard_intrinsics_match_qualisys() -> None:
    need(INTRINSICS)
    need(DEMO / "calibration" / "Calib.qca.txt")
    reference = import_rig(DEMO / "calibration" / "Calib.qca.txt", "qualisys")
    folders = sorted(INTRINSICS.glob("int_cam*_img"))
    assert len(folders) == 4
    result = calibrate_rig(folders, checkerboard(7, 4, 0.06), CalibrationOptions(intrinsics_only=True),
                           progress=None)
    ref_by_number = {camera_number(c.name): c for c in reference}
    cap = cv2.VideoCapture(str(DEMO / "videos" / "cam01.mp4"))
    video_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    cap.release()
    print(f"\n[pose2sim] intrinsics from checkerboard stills vs Qualisys (checkerboard stills "
          f"{result.rig[0].image_size[0]}x{result.rig[0].image_size[1]}, reference "
          f"{reference[0].image_size[0]}x{reference[0].image_size[1]}, video cam01 {video_w} wide)")
    errors = {}
    for cam in result.rig:
        ref = ref_by_number[camera_number(cam.name)]
        entry = result.report.cameras[cam.name]
        # The stills are full 1088-wide sensor frames like the reference (unlike the 1080-wide
        # cam01/cam02 videos), so focal lengths compare directly, without rescaling.
        assert tuple(cam.image_size) == tuple(ref.image_size), (cam.name, cam.image_size, ref.image_size)
        err = [(f - r) / r * 100.0 for f, r in zip(cam.focal, ref.focal)]
        errors[cam.name] = err
        print(f"  {cam.name}: {entry.board_frames}/{entry.frames} views, intrinsic RMS "
              f"{entry.intrinsic_rms_px} px, f = ({cam.focal[0]:.1f}, {cam.focal[1]:.1f}) vs "
              f"({ref.focal[0]:.1f}, {ref.focal[1]:.1f}): {err[0]:+.2f} %, {err[1]:+.2f} %; rejected "
              f"{entry.rejected_frames.by_reason}")
    bad = {n: e for n, e in errors.items() if max(abs(x) for x in e) > 2.0}
    assert not bad, f"focal length off the Qualisys reference by more than 2 %: {bad}"


# --------------------------------------------------------------------------- command line
def run_cli(*args) -> subprocess.CompletedProcess:
    assert POSESTUDIO.is_file(), f"{POSESTUDIO} not installed in this environment"
    return subprocess.run([str(POSESTUDIO), "calibrate", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_calibrates_the_caliscope_session(board_files, tmp_path) -> None:
    out = tmp_path / "out" / "rig.toml"
    proc = run_cli("--board", board_files["inverted"], "--out", out, *VIDEOS)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rig = CameraRig.load(out)
    assert rig.names == ["cam_0", "cam_1", "cam_2", "cam_3"]
    assert (out.parent / "rig_report.json").is_file() and (out.parent / "rig_report.png").is_file()
    assert (out.parent / "rig_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "camera" in proc.stdout and "reproj RMS px" in proc.stdout
    for name in rig.names:
        assert re.search(rf"^{name}\s+\d+\s+\d+\.\d+", proc.stdout, re.M), name
    assert "board-size error" in proc.stdout
    print("\n[cli] " + next(line for line in proc.stdout.splitlines() if "board-size error" in line))


def test_cli_wrong_dictionary_says_what_was_seen(board_files, tmp_path) -> None:
    out = tmp_path / "out" / "rig.toml"
    proc = run_cli("--board", board_files["wrong_dict"], "--out", out, *VIDEOS)
    print("\n[cli] wrong dictionary, stderr:\n" + proc.stderr)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert re.search(r"cameras? cam_\d", proc.stderr)
    assert "no board found" in proc.stderr
    assert "DICT_4X4" in proc.stderr
    assert not out.exists()
