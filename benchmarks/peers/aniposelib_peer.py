"""aniposelib 0.8.0 as a calibration peer: its own pipeline, from videos, as its users run it.

``CameraGroup.from_names(names)`` + ``CharucoBoard`` / ``Checkerboard`` +
``CameraGroup.calibrate_videos(videos, board)`` with its default settings (it initialises the
focal length with ``cv2.initCameraMatrix2D``, keeps the principal point at the image centre and
refines one focal length and k1 per camera in its bundle adjustment). Board detection is its own
and is part of the timed run.

aniposelib's marker detector has no inverted-marker option, so a board printed white on black is
not found; ``invert_frames=True`` first writes colour-inverted lossless copies of the videos
(FFV1 in Matroska, timed separately as ``timings["invert_frames"]``) and runs on those, and the
result notes say so.

aniposelib is never a PoseStudio runtime dependency: install it for benchmarks only
(``benchmarks/README.md``). Import errors come back as a failed :class:`PeerResult`.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posestudio.calibration.board import BoardSpec
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

from . import PeerResult

PEER = "aniposelib"

# (marker bits, dictionary size) that aniposelib 0.8.0's CharucoBoard accepts.
_ANIPOSE_DICTS = {(b, n) for b in (4, 5, 6, 7) for n in (50, 100, 250, 1000)}


def version() -> str:
    """Installed aniposelib version, or ``"not installed"``."""
    try:
        from importlib.metadata import version as _v

        return _v("aniposelib")
    except Exception:  # noqa: BLE001
        return "not installed"


def make_board(board: BoardSpec):
    """The aniposelib board object for a :class:`BoardSpec`.

    Args:
        board: PoseStudio's board (metres).
    Returns:
        ``aniposelib.boards.CharucoBoard`` or ``Checkerboard`` (lengths in metres, so its rig
        comes out in metres).
    Raises:
        ValueError: for boards aniposelib 0.8.0 cannot describe (other dictionaries, the legacy
            ChArUco layout with an even number of rows).
    """
    from aniposelib.boards import CharucoBoard, Checkerboard

    if board.type == "checkerboard":
        # aniposelib counts inner corners, like cv2.findChessboardCorners.
        return Checkerboard(board.corners_x, board.corners_y, square_length=board.square_length)
    m = re.fullmatch(r"DICT_(\d)X\d_(\d+)", board.dictionary)
    key = (int(m.group(1)), int(m.group(2))) if m else None
    if key not in _ANIPOSE_DICTS:
        raise ValueError(f"aniposelib 0.8.0 supports only DICT_{{4..7}}X{{4..7}}_{{50,100,250,1000}}, "
                         f"not {board.dictionary}")
    if board.legacy and board.squares_y % 2 == 0:
        raise ValueError("aniposelib 0.8.0 has no option for OpenCV's legacy ChArUco layout "
                         "(it matters for boards with an even number of rows)")
    return CharucoBoard(board.squares_x, board.squares_y, square_length=board.square_length,
                        marker_length=board.marker_length, marker_bits=key[0], dict_size=key[1])


def write_inverted_copies(video_paths: list[Path], out_dir: Path) -> list[Path]:
    """Write colour-inverted, lossless copies of videos (FFV1 in ``.mkv``, same frame rate).

    Args:
        video_paths: source videos.
        out_dir: folder for the copies (one ``<stem>.mkv`` per source).
    Returns:
        Paths of the copies, in input order.
    Raises:
        OSError: when a video cannot be read or the writer cannot be opened.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = []
    for src in video_paths:
        cap = cv2.VideoCapture(str(src))
        if not cap.isOpened():
            raise OSError(f"{src}: cannot open video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        dst = out_dir / f"{Path(src).stem}.mkv"
        writer = None
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
                    if not writer.isOpened():
                        raise OSError(f"{dst}: cannot open an FFV1 video writer")
                writer.write(255 - frame)
        finally:
            cap.release()
            if writer is not None:
                writer.release()
        if writer is None:
            raise OSError(f"{src}: no frames")
        outs.append(dst)
    return outs


def _rig_from_group(group, names: list[str]) -> CameraRig:
    """Convert an aniposelib ``CameraGroup`` (Rodrigues rvec, tvec in board units) to a rig."""
    cams = []
    for cam, name in zip(group.cameras, names):
        rvec = np.asarray(cam.get_rotation(), float).ravel()
        tvec = np.asarray(cam.get_translation(), float).ravel()
        dist = np.asarray(cam.get_distortions(), float).ravel()
        if dist.size not in (4, 5, 8):
            dist = np.concatenate([dist, np.zeros(5)])[:5]
        matrix = np.asarray(cam.get_camera_matrix(), float)
        if not (np.isfinite(rvec).all() and np.isfinite(tvec).all() and np.isfinite(matrix).all()):
            raise ValueError(f"camera {name}: non-finite parameters after calibration")
        w, h = cam.get_size()
        cams.append(Camera(name, (int(w), int(h)), matrix, dist, rodrigues_to_matrix(rvec), tvec))
    return CameraRig(cams, {"tool": f"aniposelib {version()}"})


def calibrate(video_paths: list[Path], board: BoardSpec, invert_frames: bool = False,
              names: list[str] | None = None, workdir: Path | None = None,
              keep_log: bool = True) -> PeerResult:
    """Calibrate a rig with aniposelib's own pipeline.

    Args:
        video_paths: one video per camera, frames paired by index.
        board: the board filmed (metres).
        invert_frames: run on colour-inverted copies (for boards printed white on black, which
            aniposelib's detector does not see); the copy time is reported separately.
        names: camera names (default: the video stems).
        workdir: where to write inverted copies (default: a temporary folder, removed after).
        keep_log: keep aniposelib's printed output in ``info["log"]`` (it prints a lot).
    Returns:
        A :class:`PeerResult`; ``rig, seconds = result``. ``seconds`` is aniposelib's
        ``calibrate_videos`` wall time, its own board detection included. On failure ``rig`` is
        None and ``failure`` holds the reason.
    """
    paths = [Path(p) for p in video_paths]
    names = names or [p.stem for p in paths]
    ver = version()
    notes: list[str] = []
    timings: dict[str, float] = {}
    if ver == "not installed":
        return PeerResult(PEER, ver, None, 0.0, failure="aniposelib is not installed "
                          "(see benchmarks/README.md for the benchmark-only install)")
    try:
        from aniposelib.cameras import CameraGroup

        ani_board = make_board(board)
    except Exception as exc:  # noqa: BLE001
        return PeerResult(PEER, ver, None, 0.0, failure=f"{type(exc).__name__}: {exc}")

    tmp = None
    run_paths = paths
    if invert_frames:
        tmp = Path(tempfile.mkdtemp(prefix="anipose_inv_", dir=workdir))
        t0 = time.perf_counter()
        try:
            run_paths = write_inverted_copies(paths, tmp)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return PeerResult(PEER, ver, None, 0.0, failure=f"inverting videos failed: {exc}")
        timings["invert_frames"] = time.perf_counter() - t0
        notes.append("ran on colour-inverted copies of the videos (aniposelib cannot detect "
                     "white-on-black markers); copy time not counted in its wall time")
    elif board.inverted:
        notes.append("board is printed inverted but frames were not inverted: aniposelib will "
                      "likely find no markers")

    log = io.StringIO()
    group = CameraGroup.from_names(names)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            error, rows = group.calibrate_videos([[str(p)] for p in run_paths], ani_board, verbose=False)
        seconds = time.perf_counter() - t0
        rig = _rig_from_group(group, names)
    except Exception as exc:  # noqa: BLE001 - aniposelib fails in many ways on bad input
        seconds = time.perf_counter() - t0
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ValueError) and "unpack" in str(exc):
            reason += " (aniposelib found no usable board views in at least one camera)"
        info = {"log": log.getvalue()} if keep_log else {}
        return PeerResult(PEER, ver, None, seconds, failure=reason, timings=timings, notes=notes, info=info)
    finally:
        if tmp is not None and workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    timings["calibrate_videos"] = seconds
    notes.append("aniposelib keeps the principal point at the image centre and refines one "
                 "focal length and k1 per camera")
    info = {"median_reprojection_error_px": float(error),
            "boards_detected": {n: len(r) for n, r in zip(names, rows)}}
    if keep_log:
        info["log"] = log.getvalue()
    return PeerResult(PEER, ver, rig, seconds, timings=timings, notes=notes, info=info)
