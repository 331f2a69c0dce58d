"""OpenCV 5's ``cv2.calibrateMultiview`` as a calibration peer, on PoseStudio's own detections.

The comparison is on identical board detections: corners come from PoseStudio's
:class:`~posestudio.calibration.detect.BoardDetector` (via ``detect_in_frames``), either passed in
or detected here from videos (then timed separately as ``timings["detection"]`` and included in
the wall time).

What the OpenCV 5.1 binding expects (checked at run time with ``help(cv2.calibrateMultiview)``)::

    calibrateMultiview(objPoints, imagePoints, imageSize, detectionMask, models, Ks, distortions,
                       Rs, Ts[, flagsForIntrinsics[, flags[, criteria]]]) -> rms, Ks, distortions, Rs, Ts

- ``objPoints``: one float32 ``(N, 3)`` array per frame, metres, the same N in every frame;
- ``imagePoints[camera][frame]``: float32 ``(N, 2)`` pixels;
- ``detectionMask``: uint8 ``(cameras, frames)``; ``models``: uint8 ``(cameras, 1)`` of
  ``cv2.CALIB_MODEL_PINHOLE``;
- ``Rs``/``Ts`` come back as Rodrigues vectors ``(3, 1)`` and translations ``(3, 1)``, camera 0
  being the reference (R = 0, t = 0): each is the map from camera 0's frame into that camera.

Quirks seen in 5.1 (see ``benchmarks/README.md``):

- Only frames where a camera saw the *whole* board can be used. Partial views written with
  placeholders (e.g. -1, -1) are not skipped: the solve diverges (RMS ~1e11 px on the caliscope
  session) with only a logged warning. So a ChArUco board seen partly is dropped for that camera.
- Intrinsics are never refined jointly: with ``Ks=None`` each camera is calibrated alone
  (``cv2.calibrateCamera`` with ``flagsForIntrinsics``, 5 coefficients) on its full-board views
  only; with ``flags=cv2.CALIB_USE_INTRINSIC_GUESS`` the given Ks/distortions are kept as they
  are. The default here (``intrinsics="per_camera"``) first runs ``cv2.calibrateCamera`` per
  camera on all of its views (partial ChArUco views included), as DEPENDENCY_FACTS suggests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.detect import CameraDetections, detect_in_frames
from posestudio.capture.sources import FrameSource
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

from . import PeerResult

PEER = "cv2.calibrateMultiview"
INTRINSICS_MODES = ("per_camera", "internal")
MIN_PER_CAMERA_VIEWS = 3


def version() -> str:
    """OpenCV version string, e.g. ``"5.1.0"``."""
    return cv2.__version__


def signature() -> str:
    """The binding's signature line, as ``help(cv2.calibrateMultiview)`` shows it."""
    doc = (getattr(getattr(cv2, "calibrateMultiview", None), "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def detect_videos(video_paths: Sequence[Path], board: BoardSpec) -> list[CameraDetections]:
    """PoseStudio's board detection on each video (camera name = video stem)."""
    out = []
    for p in video_paths:
        src = FrameSource.open(p)
        out.append(detect_in_frames(src.name, src.frames(gray=True), board))
    return out


def _full_board_arrays(dets: list[CameraDetections], board: BoardSpec
                       ) -> tuple[list[NDArray[np.float32]], list[list[NDArray[np.float32]]], NDArray[np.uint8], NDArray[np.int64]]:
    """calibrateMultiview's inputs from the full-board views.

    Returns:
        ``(objPoints, imagePoints, detectionMask, frames)``: ``F`` float32 ``(N, 3)`` arrays
        (metres), ``imagePoints[c][f]`` float32 ``(N, 2)`` (zeros where not seen), uint8
        ``(C, F)`` mask, and the ``(F,)`` source frame indices kept (seen whole by >= 1 camera).
    """
    n = board.n_corners
    obj = board.corner_points().astype(np.float32)
    n_frames = max((o.frame for d in dets for o in d.observations), default=-1) + 1
    pix = np.zeros((len(dets), n_frames, n, 2), np.float32)
    mask = np.zeros((len(dets), n_frames), np.uint8)
    for c, d in enumerate(dets):
        for o in d.observations:
            if len(o.ids) == n and len(np.unique(o.ids)) == n:
                pix[c, o.frame, o.ids] = o.pixels
                mask[c, o.frame] = 1
    frames = np.flatnonzero(mask.any(axis=0))
    img = [[np.ascontiguousarray(pix[c, f]) for f in frames] for c in range(len(dets))]
    return [obj] * len(frames), img, np.ascontiguousarray(mask[:, frames]), frames


def _per_camera_intrinsics(dets: list[CameraDetections], board: BoardSpec
                           ) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]], list[float]]:
    """``cv2.calibrateCamera`` per camera on all its views (5 distortion coefficients).

    Returns:
        ``(Ks (3, 3) each, distortions (1, 5) each, RMS px each)``.
    Raises:
        ValueError: when a camera has fewer than :data:`MIN_PER_CAMERA_VIEWS` views.
    """
    corners = board.corner_points().astype(np.float32)
    ks, ds, rms = [], [], []
    for d in dets:
        if len(d.observations) < MIN_PER_CAMERA_VIEWS:
            raise ValueError(f"camera {d.name}: only {len(d.observations)} board views for its intrinsics")
        obj = [corners[o.ids] for o in d.observations]
        img = [o.pixels.astype(np.float32) for o in d.observations]
        err, k, dist, _, _ = cv2.calibrateCamera(obj, img, d.image_size, None, None)
        ks.append(k)
        ds.append(dist.reshape(1, -1))
        rms.append(float(err))
    return ks, ds, rms


def _rotation(r: NDArray) -> NDArray[np.float64]:
    """A returned rotation (Rodrigues ``(3, 1)`` in 5.1, or a ``(3, 3)`` matrix) as a matrix."""
    r = np.asarray(r, np.float64)
    return rodrigues_to_matrix(r.ravel()) if r.size == 3 else r.reshape(3, 3)


def calibrate(source: Sequence[CameraDetections] | Sequence[Path | str], board: BoardSpec,
              intrinsics: str = "per_camera", names: list[str] | None = None) -> PeerResult:
    """Calibrate a rig with ``cv2.calibrateMultiview``.

    Args:
        source: PoseStudio detections per camera (detection time then not counted), or one video
            per camera (detected here with PoseStudio's detector; the time is counted).
        board: the board filmed (metres).
        intrinsics: ``"per_camera"`` (``cv2.calibrateCamera`` per camera on all its views, then
            given to calibrateMultiview with ``CALIB_USE_INTRINSIC_GUESS``) or ``"internal"``
            (``Ks=None``: calibrateMultiview's own per-camera calibration on full-board views).
        names: camera names (default: detection names or video stems).
    Returns:
        A :class:`PeerResult` (``rig, seconds = result``); the rig's world frame is the first
        camera's (R = I, t = 0). ``timings`` has ``detection``, ``intrinsics`` and
        ``calibrateMultiview``; ``info`` has the returned RMS, the reference camera index and
        the full-board views used per camera.
    """
    if intrinsics not in INTRINSICS_MODES:
        raise ValueError(f"intrinsics must be one of {INTRINSICS_MODES}, got {intrinsics!r}")
    ver = version()
    if not hasattr(cv2, "calibrateMultiview"):
        return PeerResult(PEER, ver, None, 0.0, failure="this OpenCV has no calibrateMultiview (needs 5.0+)")
    timings: dict[str, float] = {}
    notes: list[str] = []
    t_start = time.perf_counter()
    src = list(source)
    if src and isinstance(src[0], CameraDetections):
        dets = list(src)  # type: ignore[arg-type]
        notes.append("on PoseStudio's detections passed in; detection time not included")
    else:
        t0 = time.perf_counter()
        try:
            dets = detect_videos([Path(p) for p in src], board)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001
            return PeerResult(PEER, ver, None, time.perf_counter() - t_start, failure=f"detection failed: {exc}")
        timings["detection"] = time.perf_counter() - t0
        notes.append("detection by PoseStudio's BoardDetector, included in the wall time")
    names = names or [d.name for d in dets]

    objs, imgs, mask, frames = _full_board_arrays(dets, board)
    info: dict = {"signature": signature(), "intrinsics": intrinsics,
                  "full_board_views": {n: int(mask[c].sum()) for c, n in enumerate(names)},
                  "views": {n: len(d.observations) for n, d in zip(names, dets)}}
    notes.append("uses only views where a camera saw the whole board (5.1 breaks on partial views)")
    empty = [n for c, n in enumerate(names) if not mask[c].any()]
    if empty:
        return PeerResult(PEER, ver, None, time.perf_counter() - t_start, timings=timings, notes=notes, info=info,
                          failure=f"no full-board view in camera(s) {', '.join(empty)}")
    sizes = [tuple(int(v) for v in d.image_size) for d in dets]
    models = np.full((len(dets), 1), cv2.CALIB_MODEL_PINHOLE, np.uint8)
    try:
        if intrinsics == "per_camera":
            t0 = time.perf_counter()
            ks_in, ds_in, rms_in = _per_camera_intrinsics(dets, board)
            timings["intrinsics"] = time.perf_counter() - t0
            info["per_camera_intrinsics_rms_px"] = dict(zip(names, rms_in))
            notes.append("intrinsics from cv2.calibrateCamera per camera on all views; "
                         "calibrateMultiview keeps them fixed")
            t0 = time.perf_counter()
            rms, ks, ds, rs, ts = cv2.calibrateMultiview(objs, imgs, sizes, mask, models, ks_in, ds_in, None, None,
                                                         None, cv2.CALIB_USE_INTRINSIC_GUESS)
        else:
            notes.append("intrinsics from calibrateMultiview's own per-camera calibration (full-board views only)")
            t0 = time.perf_counter()
            rms, ks, ds, rs, ts = cv2.calibrateMultiview(objs, imgs, sizes, mask, models, None, None, None, None)
        timings["calibrateMultiview"] = time.perf_counter() - t0
    except (cv2.error, ValueError) as exc:
        return PeerResult(PEER, ver, None, time.perf_counter() - t_start, timings=timings, notes=notes, info=info,
                          failure=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}")
    seconds = time.perf_counter() - t_start
    info["returned_rms_px"] = float(rms)

    rots = [_rotation(r) for r in rs]
    trans = [np.asarray(t, np.float64).ravel() for t in ts]
    ref = [c for c in range(len(rots)) if np.allclose(rots[c], np.eye(3), atol=1e-9)
           and np.allclose(trans[c], 0.0, atol=1e-12)]
    info["reference_camera"] = names[ref[0]] if ref else None
    # Express in the first camera's frame (a no-op when it is the reference, as in 5.1).
    r0, t0_ = rots[0], trans[0]
    cams = []
    for c, n in enumerate(names):
        r_new = rots[c] @ r0.T
        t_new = trans[c] - r_new @ t0_
        dist = np.asarray(ds[c], np.float64).ravel()
        if dist.size not in (4, 5, 8):
            return PeerResult(PEER, ver, None, seconds, timings=timings, notes=notes, info=info,
                              failure=f"camera {n}: {dist.size} distortion coefficients, not convertible")
        cams.append(Camera(n, sizes[c], np.asarray(ks[c], np.float64), dist, r_new, t_new))
    bad = [c.name for c in cams if not (np.isfinite(c.matrix).all() and np.isfinite(c.translation).all())]
    if bad or not np.isfinite(rms) or rms > 1e3:
        return PeerResult(PEER, ver, None, seconds, timings=timings, notes=notes, info=info,
                          failure=f"diverged (returned RMS {rms:.3g} px; non-finite cameras: {bad})")
    rig = CameraRig(cams, {"tool": f"OpenCV {ver} calibrateMultiview", "world_frame": f"camera {names[0]}"})
    return PeerResult(PEER, ver, rig, seconds, timings=timings, notes=notes, info=info)
