"""The whole rig's extrinsics re-solved jointly from a take's 2D keypoints (intrinsics fixed), the
world frame and scale kept from the rig as a whole (``posestudio rig refine --whole-rig``).

A bundle adjustment over the performer's joints by variable projection: the unknowns are each
camera's pose (a small turn ``w`` applied to its rotation, ``R = exp(w) R0``, and its centre ``c``,
metres); for a set of poses the joints are the weighted DLT of every camera's undistorted
detections, and the residuals are the cameras' reprojection errors of those joints (pixels, at
each camera's focal length, weighted by the detection's confidence and a Cauchy weight of its
error at the previous round's rig, views further off than ``consistency_px`` left out: the inliers
are re-made at every round, as a set chosen at the given rig would hold the solution near it).
Seven gauge residuals hold what the joints cannot tell: the mean of
the camera centres, their RMS distance from that mean (the scale) and the mean turn stay the
given rig's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from posestudio.core.arrays import FloatArray
from posestudio.core.dlt import triangulate_dlt
from posestudio.core.rig import CameraRig
from posestudio.core.robust import cauchy_weights
from posestudio.core.rotations import rodrigues_to_matrix, rotation_angle_deg

from .drift_options import DriftOptions, RigDriftError
from .drift_residuals import robust_triangulate

#: weight of the gauge residuals (per metre of the centres' mean and scale, per radian of the mean turn)
GAUGE_WEIGHT = 1e5


@dataclass
class WholeRigFit:
    """The rig re-solved as a whole.

    Attributes:
        rig: the re-solved rig (intrinsics as given); rotation_deg / shift_m: ``(C,)`` each camera's
            turn (degrees) and centre shift (metres) from the given pose; residual_before_px /
            residual_after_px: median reprojection error of the joints at the given and the
            re-solved rig, pixels; observations: detections used; frames: ``(start, stop)`` of the take used.
    """

    rig: CameraRig
    rotation_deg: FloatArray
    shift_m: FloatArray
    residual_before_px: float
    residual_after_px: float
    observations: int
    frames: tuple[int, int]

    def lines(self) -> list[str]:
        """The report as lines for the user: one per camera, then the residuals."""
        out = [f"camera {n}: turned {r:.2f} deg, shifted {100 * s:.1f} cm"
               for n, r, s in zip(self.rig.names, self.rotation_deg, self.shift_m)]
        return out + [f"whole rig re-solved from frames {self.frames[0]}-{self.frames[1] - 1} ({self.observations} "
                      f"detections): median residual {self.residual_before_px:.1f} -> {self.residual_after_px:.1f} px"]

    def to_json(self) -> dict:
        """The fit as a JSON-ready dict (degrees, metres, pixels)."""
        return {"cameras": self.rig.names, "rotation_deg": self.rotation_deg.tolist(), "shift_m": self.shift_m.tolist(),
                "residual_before_px": self.residual_before_px, "residual_after_px": self.residual_after_px,
                "observations": self.observations, "frames": list(self.frames)}


def _poses(x: FloatArray, rot0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(C, 3, 3)`` rotations and ``(C, 3)`` centres from the parameters ``(6C,)``."""
    p = x.reshape(-1, 6)
    return rodrigues_to_matrix(p[:, :3]) @ rot0, p[:, 3:]


def _reprojection(rot: FloatArray, centre: FloatArray, normed: FloatArray, weights: FloatArray,
                  focal: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Joints ``(N, 3)`` (weighted DLT) and each view's reprojection error vector ``(C, N, 2)``
    (pixels at the focal length, undistorted; NaN where unseen or behind)."""
    t = -np.einsum("cij,cj->ci", rot, centre)
    poses = np.concatenate([rot, t[..., None]], axis=-1)
    pts = triangulate_dlt(poses, normed, weights, 2)
    cam = np.einsum("cij,nj->cni", rot, pts) + t[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = focal[:, None, None] * (cam[..., :2] / cam[..., 2:3] - normed)
    return pts, np.where((cam[..., 2:3] > 0) & (weights[..., None] > 0), err, np.nan)


def refine_whole_rig(rig: CameraRig, keypoints: FloatArray, options: DriftOptions | None = None,
                     frames: tuple[int, int] | None = None, rounds: int = 4, source: str = "<keypoints>") -> WholeRigFit:
    """Every camera's extrinsics re-solved jointly over the performer's joints, intrinsics fixed,
    the world frame and scale those of the rig as a whole (see the module docstring).

    Args:
        rig: ``C`` cameras in the keypoints' order; keypoints: ``(C, F, J, 3)`` x, y (pixels),
        confidence, NaN where absent; options: ``min_confidence``, ``robust_px`` (Cauchy scale,
        pixels), ``consistency_px`` (a first view further off is left out), ``max_solve_points``
        (joints used, frames evenly subsampled); frames: ``[start, stop)`` (None: all); rounds:
        reweighting rounds; source: named in errors.
    Returns:
        :class:`WholeRigFit`.
    Raises:
        RigDriftError: fewer than 2 cameras or too few joints seen by two cameras.
    """
    o = options or DriftOptions()
    kp = np.asarray(keypoints, float)
    if kp.ndim != 4 or kp.shape[0] != len(rig) or len(rig) < 2:
        raise RigDriftError(f"{source}: re-solving the whole rig needs keypoints (cameras, frames, joints, 3) "
                            f"for its {len(rig)} cameras (at least 2), got shape {kp.shape}")
    a, b = frames if frames is not None else (0, kp.shape[1])
    part = kp[:, a:b]
    c, f, j, _ = part.shape
    step = max(1, int(np.ceil(f * j / o.max_solve_points)))
    part = part[:, ::step]
    conf = np.nan_to_num(part[..., 2])
    seen = np.isfinite(part[..., :2]).all(-1) & (conf >= o.min_confidence)
    pix = np.where(seen[..., None], part[..., :2], np.nan).reshape(c, -1, 2)
    conf = np.where(seen, conf, 0.0).reshape(c, -1)
    normed = rig.undistort(pix)
    focal = rig.focal_x

    def inlier_weights(at: CameraRig) -> FloatArray:
        """``(C, N)`` confidence x Cauchy weight of each view's error at the rig ``at`` (its robust
        triangulation), 0 beyond ``consistency_px`` or for joints left with under two views."""
        _, err = robust_triangulate(at, pix, conf, o.robust_px, j)
        err = np.nan_to_num(err, nan=np.inf)
        w = np.where(err <= o.consistency_px, conf * cauchy_weights(np.minimum(err, 1e6) ** 2, o.robust_px), 0.0)
        return w * ((w > 0).sum(0) >= 2)

    w = inlier_weights(rig)
    if (w > 0).any(0).sum() < 12:
        raise RigDriftError(f"{source}: too few joints seen by two cameras to re-solve the whole rig")
    rot0 = np.stack([cam.rotation for cam in rig.cameras])
    centre0 = np.stack([cam.center for cam in rig.cameras])
    mean0 = centre0.mean(0)
    scale0 = np.sqrt(np.mean(np.sum((centre0 - mean0) ** 2, -1)))
    x = np.concatenate([np.zeros((c, 3)), centre0], axis=1).ravel()

    def residuals(x: FloatArray, w: FloatArray) -> FloatArray:
        rot, centre = _poses(x, rot0)
        _, err = _reprojection(rot, centre, normed, w, focal)
        res = np.nan_to_num(err * np.sqrt(w)[..., None]).ravel()
        mean = centre.mean(0)
        scale = np.sqrt(np.mean(np.sum((centre - mean) ** 2, -1)))
        turn = np.einsum("cji,cj->i", rot0, x.reshape(-1, 6)[:, :3])   # sum of R0^T w: the world's turn
        gauge = GAUGE_WEIGHT * np.r_[mean - mean0, scale - scale0, turn / c]
        return np.r_[res, gauge]

    def median_error(x: FloatArray, w: FloatArray) -> float:
        err = _reprojection(*_poses(x, rot0), normed, w, focal)[1]
        return float(np.nanmedian(np.linalg.norm(err, axis=-1)[w > 0]))

    x0 = x
    for _ in range(rounds):  # the inliers and their weights re-made at each round's rig
        x = least_squares(residuals, x, args=(w,), x_scale="jac", method="trf", ftol=1e-12, xtol=1e-12,
                          gtol=1e-12).x
        rot, centre = _poses(x, rot0)
        w = inlier_weights(CameraRig([cam.with_pose(r, -r @ k) for cam, r, k in zip(rig.cameras, rot, centre)]))
    kept = np.where(w > 0, conf, 0.0)
    rot, centre = _poses(x, rot0)
    cams = [cam.with_pose(r, -r @ k) for cam, r, k in zip(rig.cameras, rot, centre)]
    return WholeRigFit(rig=CameraRig(cams, dict(rig.metadata)),
                       rotation_deg=np.array([float(rotation_angle_deg(r, r0)) for r, r0 in zip(rot, rot0)]),
                       shift_m=np.linalg.norm(centre - centre0, axis=-1), residual_before_px=median_error(x0, kept),
                       residual_after_px=median_error(x, kept), observations=int((kept > 0).sum()),
                       frames=(int(a), int(b)))


__all__ = ["WholeRigFit", "refine_whole_rig"]
