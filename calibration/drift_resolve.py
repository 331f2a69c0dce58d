"""A moved camera's extrinsics re-solved from the performer's joints (intrinsics fixed; the other
cameras fixed, so the world frame and scale stay the rig's).

From the frames after the change: the joints triangulated from the other cameras and the camera's
own detections (its fixed per-joint offset, measured before the change, taken off), PnP with
RANSAC on undistorted points, then a robust (Cauchy) Levenberg-Marquardt on the 6 pose parameters
against distorted pixels, then a bundle adjustment by alternation (the joints triangulated from
every camera, the moved one at its new pose; the pose re-solved against them). The Cauchy scale
and the consistency test grow with the camera's own noise (:func:`noise_scaled`): at BlazePose-level
errors a 30 px test kept only about 40 % of the joints.

The limit under a detector's correlated errors: solving the same pose against the true 3D joints
with the true per-joint bias removed still errs by about 0.06-0.26 degree and 0.7-1.9 cm (realistic
detector, 4 px jitter correlated over ~10 frames) and 0.1-0.7 degree and 1-4.6 cm (BlazePose-level
errors): the few independent samples of a correlated jitter leave the camera's shift across its
line of sight and a compensating turn poorly told apart. Tried and not kept, as no better on the
benchmark's takes: every view's per-joint bias (from before the change) taken off before a joint
bundle adjustment, AR(1) whitening of the residuals, a prior on the centre's shift.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import cv2
import numpy as np
from scipy.optimize import least_squares

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

from .drift_options import DriftOptions, RigDriftError
from .drift_residuals import robust_triangulate, sound_points
from .drift_segments import SEGMENT_MARK, segment_ranges, split_keypoints


def solve_camera_pose(camera: Camera, points: FloatArray, pixels: FloatArray, robust_px: float,
                      max_points: int = 6000, pnp: bool = True) -> tuple[FloatArray, FloatArray, float, int]:
    """A camera's world-to-camera pose from known 3D points and its detections (intrinsics fixed).

    PnP with RANSAC on undistorted points (the camera's current pose tried too), then
    Levenberg-Marquardt with a Cauchy loss (scale ``robust_px``) on the rotation vector and
    translation against distorted pixels.

    Args:
        camera: the camera (its intrinsics and current pose); points: ``(N, 3)`` metres;
        pixels: ``(N, 2)`` its detections, pixels (rows with a NaN are ignored);
        pnp: also start from PnP (False: from the current pose only).
    Returns:
        ``rotation (3, 3)``, ``translation (3,)`` metres, median reprojection error (pixels) and the
        number of points used.
    """
    ok = np.isfinite(points).all(-1) & np.isfinite(pixels).all(-1)
    pts, pix = points[ok], pixels[ok]
    if len(pts) > max_points:
        pick = np.linspace(0, len(pts) - 1, max_points).round().astype(int)
        pts, pix = pts[pick], pix[pick]
    if len(pts) < 12:
        raise RigDriftError(f"camera {camera.name}: only {len(pts)} joints after the change to solve its pose from")
    normed = camera.undistort_points(pix)
    focal = camera.focal[0]

    def residuals(x: FloatArray) -> FloatArray:
        res = camera.with_pose(rodrigues_to_matrix(x[:3]), x[3:]).project(pts) - pix
        return np.nan_to_num(res, nan=10 * robust_px).ravel()

    starts = [np.r_[camera.rvec, camera.translation]]
    if pnp:
        found, rvec, tvec, inliers = cv2.solvePnPRansac(
            pts.astype(np.float64), normed.astype(np.float64), np.eye(3), None,
            reprojectionError=2.0 * robust_px / focal, iterationsCount=200, confidence=0.999)
        if found and inliers is not None and len(inliers) >= 6:
            starts.append(np.r_[rvec.ravel(), tvec.ravel()])
    best = None
    for x0 in starts:
        sol = least_squares(residuals, x0, loss="cauchy", f_scale=robust_px, x_scale="jac", method="trf")
        if best is None or sol.cost < best.cost:
            best = sol
    rot, t = rodrigues_to_matrix(best.x[:3]), best.x[3:].copy()
    err = np.linalg.norm(camera.with_pose(rot, t).project(pts) - pix, axis=-1)
    return rot, t, float(np.nanmedian(err)), len(pts)


def view_bias(camera: Camera, points: FloatArray, keypoints: FloatArray, o: DriftOptions) -> FloatArray:
    """A camera's fixed offset per joint: the median over frames of its detection minus the
    projection of the joints the other cameras triangulate (detections further off than
    ``consistency_px`` left out; 0 where fewer than 10 frames remain).

    Args:
        points: ``(F, J, 3)`` metres (the other cameras' joints); keypoints: ``(F, J, 3)`` its own.
    Returns:
        ``(J, 2)`` pixels.
    """
    res = keypoints[..., :2] - camera.project(points)
    ok = (np.linalg.norm(res, axis=-1) <= o.consistency_px) & (np.nan_to_num(keypoints[..., 2]) >= o.min_confidence)
    res = np.where(ok[..., None], res, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bias = np.nanmedian(res, axis=0)
    return np.where((ok.sum(0) >= 10)[:, None], np.nan_to_num(bias), 0.0)


def noise_scaled(o: DriftOptions, camera: Camera, points: FloatArray, keypoints: FloatArray) -> DriftOptions:
    """``o`` with ``robust_px`` and ``consistency_px`` multiplied by the camera's noise over
    ``o.noise_scale_px`` when that is above 1: the noise is the median distance (pixels) of its
    detections, its fixed per-joint offset (:func:`view_bias`) taken off, from the projection of
    the joints the other cameras triangulate.

    Args:
        points: ``(F, J, 3)`` metres (the other cameras' joints, frames at the pose in ``camera``);
        keypoints: ``(F, J, 3)`` the camera's own.
    """
    if o.noise_scale_px <= 0 or len(points) == 0:
        return o
    res = keypoints[..., :2] - view_bias(camera, points, keypoints, o) - camera.project(points)
    ok = np.nan_to_num(keypoints[..., 2]) >= o.min_confidence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        noise = float(np.nanmedian(np.where(ok, np.linalg.norm(res, axis=-1), np.nan)))
    factor = noise / o.noise_scale_px if np.isfinite(noise) else 1.0
    if factor <= 1.0:
        return o
    return replace(o, robust_px=factor * o.robust_px, consistency_px=factor * o.consistency_px)


def reference_joints(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, s: int,
                     o: DriftOptions) -> FloatArray:
    """``(F, J, 3)`` the joints (metres) the segment cameras other than ``s`` triangulate over ``s``'s
    frames (robust, :func:`~.drift_residuals.robust_triangulate`), kept where a sound reference
    (:func:`~.drift_residuals.sound_points`); NaN elsewhere."""
    f, j = kp.shape[1:3]
    start, stop = segment_ranges(seg_cam, seg_start, f)[s]
    split = split_keypoints(kp, seg_cam, seg_start)[:, start:stop]
    others = [k for k in range(len(cams)) if k != s]
    conf = np.nan_to_num(split[others, ..., 2])
    seen = np.isfinite(split[others, ..., :2]).all(-1) & (conf >= o.min_confidence)
    pix = np.where(seen[..., None], split[others, ..., :2], np.nan).reshape(len(others), -1, 2)
    pts, err = robust_triangulate(CameraRig([cams[k] for k in others]), pix,
                                  np.where(seen, conf, 0.0).reshape(len(others), -1), o.robust_px, j)
    out = np.full((f, j, 3), np.nan)
    out[start:stop] = sound_points(pts, err, o).reshape(stop - start, j, 3)
    return out


def refine_moved_pose(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, s: int,
                      frame: int, points: FloatArray, o: DriftOptions) -> tuple[FloatArray, FloatArray, float, int]:
    """Segment camera ``s``'s new pose from ``frame`` on: PnP and a robust solve against the joints the
    other cameras triangulate, then ``o.adjust_rounds`` rounds of bundle adjustment by alternation
    (joints triangulated from every camera with the new pose, the pose re-solved against them; the
    other cameras fixed, so they keep the world frame and scale). With ``o.bias_correction`` the
    camera's fixed per-joint offset, measured before the change (:func:`view_bias`), is taken off
    its detections after it. The Cauchy scale and the consistency test grow with the camera's
    noise before the change (:func:`noise_scaled`).

    Args:
        cams, seg_cam, seg_start: the segmented rig; kp: ``(C, F, J, 3)`` the take; s: the segment
        camera that moved at ``frame``; points: ``(F, J, 3)`` its leave-one-out reference joints.
    Returns: rotation ``(3, 3)``, translation ``(3,)`` metres, median reprojection error (pixels),
    joints used."""
    start, stop = segment_ranges(seg_cam, seg_start, kp.shape[1])[s]
    own = kp[seg_cam[s]]
    scaled = noise_scaled(o, cams[s], points[start:frame], own[start:frame])
    if scaled != o:  # a noisier detector: a wider Cauchy scale and consistency test, the reference re-made
        o, points = scaled, reference_joints(cams, seg_cam, seg_start, kp, s, scaled)
    obs = own[frame:stop, :, :2]
    if o.bias_correction:
        obs = obs - view_bias(cams[s], points[start:frame], own[start:frame], o)
    ok = np.nan_to_num(own[frame:stop, :, 2]) >= o.min_confidence
    pix = np.where(ok[..., None], obs, np.nan).reshape(-1, 2)
    rot, t, err, n = solve_camera_pose(cams[s], points[frame:stop].reshape(-1, 3), pix, o.robust_px,
                                       o.max_solve_points)
    if o.adjust_rounds == 0:
        return rot, t, err, n
    # the take from `frame` to `stop` with camera s at its new pose, as one more segment camera
    trial = cams + [replace(cams[s], name=f"{cams[s].name}{SEGMENT_MARK}{frame}", rotation=rot, translation=t)]
    t_cam, t_start = seg_cam + [seg_cam[s]], seg_start + [frame]
    split = split_keypoints(kp, t_cam, t_start)[:, frame:stop]
    conf = np.nan_to_num(split[..., 2])
    seen = np.isfinite(split[..., :2]).all(-1) & (conf >= o.min_confidence)
    flat = np.where(seen[..., None], split[..., :2], np.nan).reshape(len(trial), -1, 2)
    flat[-1] = pix
    weights = np.where(seen, conf, 0.0).reshape(len(trial), -1)
    for _ in range(o.adjust_rounds):
        joint, err = robust_triangulate(CameraRig(trial), flat, weights, o.robust_px)
        joint = sound_points(joint, err, o)
        rot, t, err, n = solve_camera_pose(trial[-1], joint, pix, o.robust_px, o.max_solve_points, pnp=False)
        trial[-1] = trial[-1].with_pose(rot, t)
    return rot, t, err, n
