"""Per-camera intrinsic calibration from board observations, and board poses per view."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rotations import rodrigues_to_matrix

from .board import BoardSpec
from .detect import BoardObservation
from .errors import CalibrationFailure

#: Views used by the closed-form + Levenberg-Marquardt intrinsic solve; more adds time, not accuracy.
MAX_INTRINSIC_VIEWS = 60
MIN_INTRINSIC_VIEWS = 4


@dataclass
class IntrinsicsResult:
    """One camera's intrinsics and the board pose in each accepted view.

    Attributes:
        camera: the camera with K and distortion (pose left at identity).
        rms: reprojection RMS of the intrinsic solve, pixels.
        views_used: frame indices used by the solve.
        board_poses: frame -> ``(rvec (3,), tvec (3,))`` board-to-camera pose from PnP.
        rejected: ``(frame, reason)`` views dropped here.
    """

    camera: Camera
    rms: float
    views_used: list[int]
    board_poses: dict[int, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def select_views(observations: list[BoardObservation], image_size: tuple[int, int], max_views: int,
                 seed: int = 0) -> list[BoardObservation]:
    """Pick views that cover the image and the range of board sizes, deterministically.

    Greedy: each step takes the view that adds the most uncovered cells of a 12 x 8 grid
    (corners of all chosen views), ties broken by a seeded shuffle.
    """
    if len(observations) <= max_views:
        return list(observations)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(observations))
    w, h = image_size
    gx, gy = 12, 8
    cells = []
    for obs in observations:
        cx = np.clip((obs.pixels[:, 0] / w * gx).astype(int), 0, gx - 1)
        cy = np.clip((obs.pixels[:, 1] / h * gy).astype(int), 0, gy - 1)
        cells.append(set((cy * gx + cx).tolist()))
    covered: set[int] = set()
    chosen: list[int] = []
    remaining = list(order)
    while remaining and len(chosen) < max_views:
        gains = np.array([len(cells[i] - covered) + 0.01 * len(cells[i]) for i in remaining])
        best = remaining.pop(int(np.argmax(gains)))
        chosen.append(best)
        covered |= cells[best]
        if len(covered) == gx * gy:
            covered = set()  # start a second sweep so later picks still spread out
    return [observations[i] for i in sorted(chosen)]


def calibrate_intrinsics(name: str, observations: list[BoardObservation], board: BoardSpec,
                         image_size: tuple[int, int], model: str = "pinhole", seed: int = 0,
                         max_views: int = MAX_INTRINSIC_VIEWS) -> IntrinsicsResult:
    """Solve K and distortion for one camera (OpenCV's Zhang + LM), then PnP every view.

    Args:
        name: camera name (for messages).
        observations: board detections of this camera.
        board: the board.
        image_size: ``(width, height)``.
        model: ``"pinhole"`` (k1, k2, p1, p2, k3) or ``"fisheye"`` (k1..k4).
    Raises:
        CalibrationFailure: fewer than ``MIN_INTRINSIC_VIEWS`` usable views, or views OpenCV cannot fit.
    """
    if len(observations) < MIN_INTRINSIC_VIEWS:
        raise CalibrationFailure(
            f"camera {name}: the board was accepted in only {len(observations)} frame(s); intrinsic "
            f"calibration needs at least {MIN_INTRINSIC_VIEWS} views at different angles")
    try:
        cam, rms, views = _solve(name, observations, board, image_size, model, seed, max_views)
    except cv2.error as exc:  # OpenCV gives up on views it cannot fit (degenerate, or the wrong lens model)
        raise CalibrationFailure(f"camera {name}: OpenCV's {model} intrinsic calibration failed on its "
                                 f"{len(observations)} board views ({exc.err}); record the board at more varied "
                                 "angles and distances, or check --model") from None
    poses, rejected = board_poses(cam, observations, board)
    return IntrinsicsResult(cam, rms, [o.frame for o in views], poses, rejected)


def _solve(name: str, observations: list[BoardObservation], board: BoardSpec, image_size: tuple[int, int],
           model: str, seed: int, max_views: int) -> tuple[Camera, float, list[BoardObservation]]:
    """OpenCV's intrinsic solve on selected views: ``(camera, RMS px, views used)``."""
    obj_all = board.corner_points()
    views = select_views(observations, image_size, max_views, seed)
    obj = [obj_all[o.ids].astype(np.float32) for o in views]
    img = [o.pixels.astype(np.float32).reshape(-1, 1, 2) for o in views]
    w, h = image_size
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    if model == "fisheye":
        k0 = np.array([[0.8 * w, 0, w / 2 - 0.5], [0, 0.8 * w, h / 2 - 0.5], [0, 0, 1]])
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW | cv2.fisheye.CALIB_USE_INTRINSIC_GUESS
        rms, k, dist, _, _ = cv2.fisheye.calibrate([o.reshape(-1, 1, 3) for o in obj], img, (w, h), k0,
                                                   np.zeros(4), flags=flags, criteria=crit)
    else:
        # k3 is held at zero here: with the board covering only part of the image it is barely
        # constrained and a per-camera fit can land far from the lens (k2, k3 trading off). The
        # joint bundle adjustment frees it, starting from this well-behaved guess.
        rms, k, dist, rv, tv = cv2.calibrateCamera(obj, img, (w, h), None, None, flags=cv2.CALIB_FIX_K3,
                                                   criteria=crit)
        # A view the others disagree with (a misdetection) is dropped and the solve repeated.
        per_view = np.array([np.sqrt(np.mean(np.sum((cv2.projectPoints(o, r, t, k, dist)[0].reshape(-1, 2)
                                                     - i.reshape(-1, 2)) ** 2, axis=1)))
                             for o, i, r, t in zip(obj, img, rv, tv)])
        bad = per_view > max(1.0, 5.0 * float(np.median(per_view)))
        if bad.any() and (~bad).sum() >= MIN_INTRINSIC_VIEWS:
            views = [v for v, b in zip(views, bad) if not b]
            obj = [o for o, b in zip(obj, bad) if not b]
            img = [i for i, b in zip(img, bad) if not b]
            rms, k, dist, _, _ = cv2.calibrateCamera(obj, img, (w, h), None, None, flags=cv2.CALIB_FIX_K3,
                                                     criteria=crit)
    cam = Camera(name, image_size, k, np.asarray(dist).ravel()[: (4 if model == "fisheye" else 5)], model=model)
    return cam, float(rms), views


def board_poses(cam: Camera, observations: list[BoardObservation], board: BoardSpec,
                max_rms: float = 3.0) -> tuple[dict[int, tuple[FloatArray, FloatArray]], list[tuple[int, str]]]:
    """Board-to-camera pose of every view by PnP (after undistortion), with sanity checks.

    Returns:
        ``(poses, rejected)``: frame -> ``(rvec, tvec)``; rejected ``(frame, reason)``.
    """
    obj_all = board.corner_points()
    poses: dict[int, tuple[FloatArray, FloatArray]] = {}
    rejected: list[tuple[int, str]] = []
    for obs in observations:
        normed = cam.undistort_points(obs.pixels)
        obj = obj_all[obs.ids]
        ok, rvec, tvec = cv2.solvePnP(obj, normed.reshape(-1, 1, 2), np.eye(3), None,
                                      flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            rejected.append((obs.frame, "board pose could not be solved"))
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, normed.reshape(-1, 1, 2), np.eye(3), None, rvec, tvec)
        proj = cam.with_pose(rodrigues_to_matrix(rvec.ravel()), tvec.ravel()).project(obj)
        err = np.sqrt(np.mean(np.sum((proj - obs.pixels) ** 2, axis=1)))
        if not np.isfinite(err) or err > max_rms or tvec[2, 0] <= 0:
            rejected.append((obs.frame, f"board pose reprojects at {err:.1f} px (> {max_rms} px)"))
            continue
        poses[obs.frame] = (rvec.ravel(), tvec.ravel())
    return poses, rejected
