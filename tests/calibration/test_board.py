"""Boards: TOML files, detection (accuracy, polarity, legacy layout), diagnosis, printing.

Synthetic views are real renderings (``BoardSpec.render``) warped by a known homography with
4x supersampling, blurred and given noise, so every corner's true position is known exactly.
Real-data tests use the caliscope recording (an inverted 4 x 5 ChArUco board, DICT_4X4_1000).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomli_w

from posestudio.calibration.board import BoardSpec, board_to_dict, load_board
from posestudio.calibration.board_diagnose import diagnose_board_mismatch
from posestudio.calibration.board_print import PAPER_SIZES_MM, read_png_dpi
from posestudio.calibration.detect import BoardDetector, detect_in_frames
from posestudio.calibration.errors import BoardError
from posestudio.capture.sources import FrameSource
from posestudio.cli import main

REPO = Path(__file__).resolve().parents[2]
CALISCOPE = REPO.parent / "shared" / "data" / "caliscope_session"
CALISCOPE_BOARD = BoardSpec("charuco", 4, 5, 0.054, 0.0405, "DICT_4X4_1000", inverted=True, source="caliscope.toml")
PT_PER_M = 72 / 0.0254

# A view from above-left, tilted: board render pixels (80 px per square) -> image pixels.
VIEW = np.array([[0.95, 0.12, 260.0], [-0.08, 0.85, 120.0], [2.5e-4, 1.5e-4, 1.0]])


def warped_view(board: BoardSpec, h: np.ndarray = VIEW, size: tuple[int, int] = (1280, 720), square_px: int = 80,
                blur: float = 0.8, noise: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A perspective view of the rendered board and the exact image position of every corner.

    The board is rendered with ``square_px * 4`` pixels per square (whole pixels, so its corners
    lie exactly where :meth:`BoardSpec.render` says), warped at 4x resolution, area-averaged down,
    blurred (Gaussian sigma, pixels) and given Gaussian noise (grey levels).

    Returns:
        ``(image (H, W) uint8, corners (n_corners, 2) pixels indexed by corner id)``.
    """
    ss, margin = 4, 40
    ppm = square_px * ss / board.square_length
    render = board.render(ppm, margin_px=margin)
    s = np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1.0]])
    h_hi = s @ h @ np.linalg.inv(s)
    big = cv2.warpPerspective(render, h_hi, (size[0] * ss, size[1] * ss), flags=cv2.INTER_LINEAR, borderValue=128)
    img = cv2.resize(big, size, interpolation=cv2.INTER_AREA).astype(np.float64)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img += np.random.default_rng(seed).normal(0.0, noise, img.shape)
    corners_hi = board.corner_points()[:, :2] * ppm + margin - 0.5
    corners = cv2.perspectiveTransform(corners_hi.reshape(-1, 1, 2), h_hi).reshape(-1, 2)
    return np.clip(img.round(), 0, 255).astype(np.uint8), (corners + 0.5) / ss - 0.5


def write_toml(path: Path, table: dict) -> Path:
    path.write_text(tomli_w.dumps({"board": table}))
    return path


# ------------------------------------------------------------------------------------ board files
def test_board_toml_round_trip(tmp_path: Path) -> None:
    for board in (BoardSpec("charuco", 6, 8, 0.03, 0.022, "DICT_5X5_100", inverted=True, legacy=True),
                  BoardSpec("checkerboard", 10, 7, 0.025)):
        path = write_toml(tmp_path / f"{board.type}.toml", board_to_dict(board))
        loaded = load_board(path)
        assert loaded == BoardSpec(**{**board.__dict__, "source": str(path)})


def test_unknown_dictionary_names_file_and_close_matches(tmp_path: Path) -> None:
    table = board_to_dict(BoardSpec("charuco", 5, 7, 0.04, 0.03))
    path = write_toml(tmp_path / "b.toml", {**table, "dictionary": "4X4_50"})
    with pytest.raises(BoardError) as err:
        load_board(path)
    msg = str(err.value)
    assert str(path) in msg and "'4X4_50'" in msg and "did you mean DICT_4X4_50" in msg


def test_millimetres_for_metres_is_refused(tmp_path: Path) -> None:
    table = board_to_dict(BoardSpec("charuco", 5, 7, 0.04, 0.03))
    path = write_toml(tmp_path / "b.toml", {**table, "square_length": 40.0, "marker_length": 30.0})
    with pytest.raises(BoardError, match=r"square_length 40.0 looks like millimetres.*metres") as err:
        load_board(path)
    assert str(path) in str(err.value)


def test_missing_key_is_named(tmp_path: Path) -> None:
    table = board_to_dict(BoardSpec("charuco", 5, 7, 0.04, 0.03))
    del table["marker_length"]
    path = write_toml(tmp_path / "b.toml", table)
    with pytest.raises(BoardError, match=r"needs 'marker_length'") as err:
        load_board(path)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------------------------ detection
def test_charuco_corners_subpixel_on_warped_rendering() -> None:
    """Measured here: mean 0.03 px, max 0.08 px (blur 0.8 px, noise 2 grey levels); cornerSubPix
    re-refinement (5 x 5 window) gives the same, 0.034 px mean, so the detector's own refinement
    is kept."""
    board = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50")
    img, truth = warped_view(board)
    obs = BoardDetector(board).detect(img).observation
    assert obs is not None
    assert sorted(obs.ids) == list(range(board.n_corners))
    err = np.linalg.norm(obs.pixels - truth[obs.ids], axis=1)
    assert err.mean() < 0.1 and err.max() < 0.25, (err.mean(), err.max())
    refined = cv2.cornerSubPix(img, obs.pixels.astype(np.float32).reshape(-1, 1, 2), (5, 5), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-4)).reshape(-1, 2)
    err_subpix = np.linalg.norm(refined - truth[obs.ids], axis=1)
    assert err.mean() < 1.5 * err_subpix.mean(), (err.mean(), err_subpix.mean())


def test_inverted_board_found_when_file_says_normal() -> None:
    printed = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", inverted=True)
    file_says = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", inverted=False)
    frames = [warped_view(printed, seed=s)[0] for s in range(2)]
    res = BoardDetector(file_says).detect(frames[0])
    assert res.inverted and res.observation is not None and len(res.observation.ids) == printed.n_corners
    dets = detect_in_frames("cam", enumerate(frames), file_says)
    assert len(dets.observations) == 2 and dets.inverted_frames == [0, 1]
    # Without the polarity fallback the markers are not found.
    assert BoardDetector(file_says, try_other_polarity=False).detect(frames[0]).observation is None


def test_legacy_board_detected_and_mismatch_diagnosed() -> None:
    legacy = BoardSpec("charuco", 5, 6, 0.04, 0.03, "DICT_4X4_50", legacy=True, source="legacy.toml")
    img, truth = warped_view(legacy)
    obs = BoardDetector(legacy).detect(img).observation
    assert obs is not None and len(obs.ids) == legacy.n_corners
    assert np.linalg.norm(obs.pixels - truth[obs.ids], axis=1).mean() < 0.1
    wrong = BoardSpec("charuco", 5, 6, 0.04, 0.03, "DICT_4X4_50", legacy=False, source="modern.toml")
    res = BoardDetector(wrong).detect(img)
    assert res.observation is None and res.marker_ids.size > 0
    msg = diagnose_board_mismatch([img], wrong)
    assert "5 x 6 squares" in msg and "legacy = true" in msg and "legacy = false but the markers fit legacy = true" in msg


def test_wrong_dictionary_diagnosed() -> None:
    printed = BoardSpec("charuco", 5, 7, 0.04, 0.028, "DICT_5X5_100")
    img, _ = warped_view(printed, h=np.array([[0.8, 0.1, 300.0], [-0.05, 0.75, 60.0], [2e-4, 1e-4, 1.0]]))
    file_says = BoardSpec("charuco", 5, 7, 0.04, 0.028, "DICT_4X4_50", source="board.toml")
    assert BoardDetector(file_says).detect(img).observation is None
    msg = diagnose_board_mismatch([img], file_says)
    assert "DICT_5X5 dictionary family" in msg and 'use "DICT_5X5_50"' in msg
    assert "17 distinct ids from 0 to 16" in msg and "5 x 7 squares" in msg
    assert 'dictionary = "DICT_5X5_50"' in msg and "board.toml" in msg
    assert "marker_length / square_length" in msg and "0.7" in msg  # measured ratio


def test_checkerboard_detection() -> None:
    board = BoardSpec("checkerboard", 9, 7, 0.03)
    img, truth = warped_view(board, square_px=60)
    obs = BoardDetector(board).detect(img).observation
    assert obs is not None and len(obs.ids) == board.n_corners
    # The corner order may start at either end (the pattern is symmetric): match to the nearest.
    err = np.linalg.norm(obs.pixels[:, None] - truth[None], axis=2).min(axis=1)
    assert err.mean() < 0.1 and err.max() < 0.3, (err.mean(), err.max())


# ------------------------------------------------------------------------------------ printing
def test_board_command_png_has_dpi_and_exact_squares(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    board = BoardSpec("charuco", 5, 7, 0.03, 0.022, "DICT_4X4_50")
    toml = write_toml(tmp_path / "board.toml", board_to_dict(board))
    out = tmp_path / "board.png"
    assert main(["board", str(toml), "--out", str(out), "--dpi", "200", "--paper", "a4"]) == 0
    assert "print at 100 %" in capsys.readouterr().out
    data = out.read_bytes()
    dpi = read_png_dpi(data)
    assert dpi is not None and abs(dpi[0] - 200) < 0.01 and abs(dpi[1] - 200) < 0.01
    page = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    px_per_mm = dpi[0] / 25.4
    assert page.shape == (round(297 * px_per_mm), round(210 * px_per_mm))
    obs = BoardDetector(board).detect(page).observation
    assert obs is not None and len(obs.ids) == board.n_corners
    # Printed at the stored DPI, adjacent corners lie one square_length apart.
    grid = obs.pixels[np.argsort(obs.ids)].reshape(board.corners_y, board.corners_x, 2)
    steps = np.concatenate([np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel(),
                            np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()]) / px_per_mm
    assert abs(steps.mean() - 30.0) < 0.02 and np.abs(steps - 30.0).max() < 0.15, steps
    # The caption is printed below the pattern, outside it.
    below = page[int(grid[-1, 0, 1] + 31 * px_per_mm):]  # from 1 mm under the pattern's lower edge
    assert (below < 128).sum() > 500


def test_board_command_pdf_exact_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    board = BoardSpec("charuco", 4, 5, 0.054, 0.0405, "DICT_4X4_1000", inverted=True)
    toml = write_toml(tmp_path / "board.toml", board_to_dict(board))
    out = tmp_path / "board.pdf"
    assert main(["board", str(toml), "--out", str(out), "--paper", "a3", "--dpi", "150"]) == 0
    pdf = out.read_bytes()
    media = [float(v) for v in re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf).groups()]
    assert np.allclose(media, np.array(PAPER_SIZES_MM["a3"]) / 1000 * PT_PER_M, atol=1e-3)
    a, b, c, d, e, f = (float(v) for v in re.search(rb"q ([-\d. ]+) cm /Im1 Do Q", pdf).group(1).split())
    assert b == c == 0
    assert abs(a - 4 * 0.054 * PT_PER_M) < 1e-3 and abs(d - 5 * 0.054 * PT_PER_M) < 1e-3  # 612.28 x 765.35 pt
    assert 0 < e and e + a < media[0] and 0 < f and f + d < media[1]
    width, height = (int(v) for v in re.search(rb"/Width (\d+) /Height (\d+)", pdf).groups())
    stream = re.search(rb"/Length (\d+) >>\nstream\n", pdf[pdf.index(b"/Subtype /Image"):])
    start = pdf.index(b"/Subtype /Image") + stream.end()
    pixels = np.frombuffer(zlib.decompress(pdf[start:start + int(stream.group(1))]), np.uint8)
    assert np.array_equal(pixels.reshape(height, width), board.render(150 / 0.0254))
    assert b"(Print at 100 % (actual size" in pdf.replace(b"\\(", b"(") and b"DICT_4X4_1000" in pdf
    assert b"/PrintScaling /None" in pdf
    # Does not fit A4 (216 x 270 mm + quiet zone + margins + caption): a warning and a larger page.
    assert main(["board", str(toml), "--out", str(out), "--paper", "a4"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "does not fit on A4" in err and str(toml) in err


def test_board_command_help_has_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["board", "--help"])
    text = capsys.readouterr().out
    assert "example:" in text and "posestudio board" in text and "--paper" in text


def test_board_command_rejects_other_formats(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    toml = write_toml(tmp_path / "board.toml", board_to_dict(BoardSpec("checkerboard", 9, 7, 0.03)))
    assert main(["board", str(toml), "--out", str(tmp_path / "board.svg")]) == 2
    assert "must end in .png or .pdf" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def caliscope_frames() -> list[np.ndarray]:
    video = CALISCOPE / "videos" / "cam_0.mp4"
    if not video.is_file():
        pytest.skip(f"real data absent: {video} (the shared data folder ../shared/data is not next to the repo)")
    frames = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for _, frame in FrameSource.open(video).frames(gray=False)]
    assert len(frames) == 57 and frames[0].shape == (720, 1280)
    return frames


@pytest.mark.realdata
def test_real_inverted_board_found_with_either_polarity(caliscope_frames: list[np.ndarray]) -> None:
    right = detect_in_frames("cam_0", enumerate(caliscope_frames), CALISCOPE_BOARD)
    assert len(right.observations) == 57 and not right.inverted_frames
    assert sum(len(o.ids) for o in right.observations) >= 650  # 674 of 57 * 12 measured
    file_says_normal = BoardSpec(**{**CALISCOPE_BOARD.__dict__, "inverted": False})
    wrong = detect_in_frames("cam_0", enumerate(caliscope_frames), file_says_normal)
    # Every frame: even those where a few false markers show in the stated (normal) polarity.
    assert len(wrong.observations) == 57 and wrong.inverted_frames == list(range(57))
    # The board's ids 0-9, plus a few false markers the normal-polarity pass sees in the room.
    assert set(range(10)) <= wrong.marker_ids_seen


@pytest.mark.realdata
def test_real_board_wrong_file_diagnosed(caliscope_frames: list[np.ndarray]) -> None:
    wrong = BoardSpec("charuco", 5, 7, 0.054, 0.027, "DICT_5X5_100", source="wrong.toml")
    assert not detect_in_frames("cam_0", enumerate(caliscope_frames[::10]), wrong).observations
    msg = diagnose_board_mismatch(caliscope_frames, wrong)
    assert "DICT_4X4 dictionary family" in msg and "printed inverted" in msg
    assert "10 distinct ids from 0 to 9" in msg and "4 x 5 squares" in msg and "legacy = false" in msg
    ratio = float(re.search(r"measured marker_length / square_length = ([\d.]+)", msg).group(1))
    assert abs(ratio - 0.75) < 0.05  # 0.726 measured (nominal 0.75: ink spread and blur shrink the markers)
    assert "squares_x = 4\nsquares_y = 5" in msg and 'dictionary = "DICT_4X4_50"' in msg and "inverted = true" in msg


def test_swapped_rows_and_columns_diagnosed() -> None:
    printed = BoardSpec("charuco", 4, 5, 0.04, 0.03, "DICT_6X6_250")
    img, _ = warped_view(printed)
    file_says = BoardSpec("charuco", 5, 4, 0.04, 0.03, "DICT_6X6_250", source="swapped.toml")
    assert BoardDetector(file_says).detect(img).observation is None
    msg = diagnose_board_mismatch([img], file_says)
    assert "squares_x x squares_y = 5 x 4 but the markers fit 4 x 5" in msg
    assert "dictionary =" not in msg.split("Differences")[1].split("\n")[0]  # the dictionary is right


# ------------------------------------------------------------------- the wrong board, for a whole rig
# Views of the printed board from several cameras (different homographies), as image folders.
RIG_VIEWS = [np.array([[0.95 - 0.04 * k, 0.12 - 0.05 * k, 240.0 + 40 * k], [-0.08 + 0.03 * k, 0.85, 110.0 + 15 * k],
                       [2.5e-4 - 1e-4 * k, 1.5e-4, 1.0]]) for k in range(3)]


def rig_folders(tmp_path: Path, printed: BoardSpec, cameras: int, frames: int = 2) -> list[Path]:
    """``cameras`` image folders, ``frames`` rendered views of ``printed`` each (square 60 px)."""
    folders = []
    for c in range(cameras):
        folder = tmp_path / f"cam{c}"
        folder.mkdir(parents=True)
        for f in range(frames):
            img, _ = warped_view(printed, h=RIG_VIEWS[(c + f) % len(RIG_VIEWS)], square_px=60, seed=10 * c + f)
            cv2.imwrite(str(folder / f"{f:06d}.png"), img)
        folders.append(folder)
    return folders


def rig_failure(tmp_path: Path, printed: BoardSpec, file_says: BoardSpec, cameras: int = 6) -> str:
    """The calibration failure of a rig filming ``printed`` with ``file_says`` as its board file."""
    from posestudio.calibration.calibrate import calibrate_rig
    from posestudio.calibration.errors import CalibrationFailure

    with pytest.raises(CalibrationFailure) as info:
        calibrate_rig(rig_folders(tmp_path, printed, cameras), file_says, progress=None)
    msg = str(info.value)
    print("\n" + msg)
    return msg


def test_wrong_dictionary_summarised_for_the_rig_in_a_few_lines(tmp_path: Path) -> None:
    printed = BoardSpec("charuco", 5, 7, 0.04, 0.028, "DICT_5X5_100")
    file_says = BoardSpec("charuco", 5, 7, 0.04, 0.028, "DICT_4X4_50", source="board.toml")
    msg = rig_failure(tmp_path, printed, file_says)
    lines = msg.splitlines()
    assert len(lines) <= 5, msg  # not one block per camera
    assert lines[0].startswith("cameras cam0, cam1, cam2, cam3, cam4, cam5: no board found") and "6 of 6" in lines[0]
    assert sum("no board found" in ln for ln in lines) == 1
    assert "DICT_5X5 dictionary family" in msg and "17 distinct ids from 0 to 16" in msg
    assert "5 x 7 squares" in msg
    assert 'Change in board.toml: dictionary = "DICT_5X5_50" (now "DICT_4X4_50").' in msg


def test_legacy_layout_mix_up_summarised(tmp_path: Path) -> None:
    printed = BoardSpec("charuco", 9, 6, 0.04, 0.03, "DICT_4X4_50", legacy=True)
    file_says = BoardSpec("charuco", 9, 6, 0.04, 0.03, "DICT_4X4_50", legacy=False, source="studio.toml")
    msg = rig_failure(tmp_path, printed, file_says, cameras=3)
    assert len(msg.splitlines()) <= 5, msg
    assert "ArUco markers of DICT_4X4_50 with 27 ids from 0 to 26 were seen by 3 of them" in msg
    assert "9 x 6 squares, legacy = true" in msg and "0 with legacy = false" in msg
    assert "Change in studio.toml: legacy = true (now false)." in msg  # the one field to change
    # And the other way round: a current (OpenCV >= 4.6) print, a file that says legacy.
    msg = rig_failure(tmp_path / "b", BoardSpec(**{**printed.__dict__, "legacy": False}),
                      BoardSpec(**{**file_says.__dict__, "legacy": True}), cameras=2)
    assert "Change in studio.toml: legacy = false (now true)." in msg


def test_inverted_print_with_wrong_dictionary_names_both_fields(tmp_path: Path) -> None:
    printed = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_6X6_250", inverted=True)
    file_says = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", source="board.toml")
    msg = rig_failure(tmp_path, printed, file_says, cameras=3)
    assert len(msg.splitlines()) <= 5, msg
    assert "printed white on black" in msg
    change = next(ln for ln in msg.splitlines() if ln.startswith("Change in board.toml"))
    assert 'dictionary = "DICT_6X6_50" (now "DICT_4X4_50")' in change and "inverted = true (now false)" in change


def test_wrong_marker_size_is_harmless_alone_and_named_with_another_mistake(tmp_path: Path) -> None:
    printed = BoardSpec("charuco", 7, 5, 0.04, 0.02, "DICT_5X5_50")  # markers half the square
    img, truth = warped_view(printed, square_px=60)
    # Alone, a wrong marker_length does not matter: OpenCV places the corners by marker id.
    obs = BoardDetector(BoardSpec(**{**printed.__dict__, "marker_length": 0.034})).detect(img).observation
    assert obs is not None and np.abs(obs.pixels - truth[obs.ids]).max() < 0.2
    # With the dictionary wrong too, the summary names both fields.
    file_says = BoardSpec("charuco", 7, 5, 0.04, 0.034, "DICT_4X4_50", source="board.toml")
    msg = rig_failure(tmp_path, printed, file_says, cameras=2)
    change = next(ln for ln in msg.splitlines() if ln.startswith("Change in board.toml"))
    assert 'dictionary = "DICT_5X5_50" (now "DICT_4X4_50")' in change
    length = float(re.search(r"marker_length = ([\d.]+) \(now 0\.034\)", change).group(1))
    assert abs(length - 0.02) <= 0.04 * 0.04  # measured ratio within 0.04 of 0.5


def test_inverted_print_is_one_warning_for_the_rig(tmp_path: Path) -> None:
    from posestudio.calibration.calibrate import check_detections, detect_sources

    printed = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", inverted=True)
    file_says = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", source="board.toml")
    folders = rig_folders(tmp_path, printed, cameras=5)
    threads = cv2.getNumThreads()
    dets, _ = detect_sources(folders, file_says, workers=2, progress=None)  # two recordings at a time
    assert cv2.getNumThreads() == threads  # OpenCV's own threads are given back
    assert [d.name for d in dets] == [f.name for f in folders]  # in input order
    assert all(len(d.observations) == 2 and d.inverted_frames == [0, 1] for d in dets)
    warnings = check_detections(dets, file_says, folders)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("board.toml: the board was found only with inverted polarity (printed white on black) "
                                  "by cameras cam0, cam1, cam2, cam3, cam4 (5 of 5)")
    assert warnings[0].endswith("set inverted = true in board.toml")


def test_some_cameras_without_the_board_are_one_line(tmp_path: Path) -> None:
    from posestudio.calibration.calibrate import check_detections
    from posestudio.calibration.detect import CameraDetections
    from posestudio.calibration.errors import CalibrationFailure

    board = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", source="board.toml")
    img, _ = warped_view(board, square_px=60)
    seen = detect_in_frames("x", enumerate([img]), board).observations
    dets = [CameraDetections(f"cam{c}", (1280, 720), 1, seen if c < 2 else []) for c in range(20)]
    with pytest.raises(CalibrationFailure) as info:
        check_detections(dets, board, None)
    msg = str(info.value)
    assert msg.splitlines()[0] == ("cameras cam2, cam3, cam4, cam5, cam6, cam7, ... cam19 (18 cameras): no board "
                                   "found in any of their frames (18 of 20 cameras, 1 each); the board was found by "
                                   "cam0, cam1")
    assert len(msg.splitlines()) == 2 and "no ArUco marker of DICT_4X4_50 was seen by any of them" in msg



def test_field_changes_for_a_checkerboard_file_name_every_charuco_field() -> None:
    from posestudio.calibration.board_diagnose import MarkerScan, field_changes

    suggestion = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", source="board.toml")
    changes = field_changes(BoardSpec("checkerboard", 7, 5, 0.04, source="board.toml"),
                            MarkerScan("DICT_4X4", False, []), "DICT_4X4_50", suggestion)
    text = "; ".join(c.assignment() for c in changes)
    assert text == ('type = "charuco" (now "checkerboard"); squares_x, squares_y = 7, 5 (now unset); marker_length = '
                    '0.03 (now unset); dictionary = "DICT_4X4_50" (now unset); legacy = false (now unset)')
