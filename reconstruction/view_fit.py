"""Place a known 3D body shape in the world from what the cameras see of it (model-based PnP).

When a body is seen by only one camera (walking out of the rig's shared volume, the take's first
and last steps), triangulation has nothing to work with. A metric body shape (the factorization
prior's canonical shape scaled to the performer's bone lengths) plus the calibrated camera(s)
still fix where the body is: :func:`fit_pose_to_views` finds, for every frame at once, the rigid
motion ``(R, t)`` that makes the shape reproject onto the 2D joints of all the cameras that see
it, and onto any 3D joints that were triangulated. Robust (Huber-weighted) Gauss-Newton with
Levenberg damping on a 6-parameter pose per frame, vectorised over frames x cameras x joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.projection import normalized_projection, normalized_projection_jacobian, to_cameras
from posestudio.core.robust import huber_weights
from posestudio.core.rotations import rodrigues_to_matrix


@dataclass
class ViewFit:
    """Result of :func:`fit_pose_to_views`.

    Attributes:
        rotation: ``(F, 3, 3)`` shape frame to world.
        translation: ``(F, 3)`` metres; world point = ``rotation @ shape + translation``.
        rms_px: ``(F,)`` robust RMS reprojection error of the observed 2D joints, pixels (NaN
            where a frame had no 2D).
        n_observations: ``(F,)`` 2D joint observations used.
    """

    rotation: FloatArray
    translation: FloatArray
    rms_px: FloatArray
    n_observations: NDArray[np.int64]

    def apply(self, shape: FloatArray) -> FloatArray:
        """World points ``(F, J, 3)`` of ``shape`` ``(F, J, 3)`` under the fitted motions."""
        return np.einsum("fij,fkj->fki", self.rotation, shape) + self.translation[:, None, :]


def fit_pose_to_views(shape: FloatArray, cam_rotation: FloatArray, cam_translation: FloatArray,
                      focal_px: FloatArray, observed: FloatArray, weights: FloatArray,
                      init_rotation: FloatArray, init_translation: FloatArray, *,
                      known: FloatArray | None = None, known_sigma_m: float | FloatArray = 0.02,
                      observation_sigma_px: float = 5.0, huber_px: float = 8.0, iterations: int = 20) -> ViewFit:
    """Rigid motion of a metric shape that best explains the cameras' 2D (and known 3D) joints.

    Args:
        shape: ``(F, J, 3)`` the body shape in its own frame, metres.
        cam_rotation: ``(C, 3, 3)`` world-to-camera rotations; cam_translation: ``(C, 3)`` metres.
        focal_px: ``(C,)`` focal lengths, pixels (turn normalised residuals into pixels).
        observed: ``(C, F, J, 2)`` undistorted normalised image coordinates ``(x/z, y/z)``, NaN
            where a camera does not see a joint.
        weights: ``(C, F, J)`` observation weights in [0, 1] (e.g. detector confidence).
        init_rotation: ``(F, 3, 3)``; init_translation: ``(F, 3)``: starting motions.
        known: optional ``(F, J, 3)`` world joints (NaN where unknown): triangulated joints or
            temporal anchors, pulled towards with standard deviation ``known_sigma_m`` (metres;
            scalar or ``(F, J)``).
        observation_sigma_px: standard deviation of a 2D residual (detector noise plus the
            shape's own error), pixels; weighs the 2D against ``known``.
        huber_px: residuals beyond this (pixels) are down-weighted (Huber IRLS), so a confident
            gross outlier in a single view cannot drag the body.
        iterations: Gauss-Newton steps.
    Returns:
        :class:`ViewFit`.
    """
    x = np.asarray(shape, dtype=np.float64)
    rc, tc = np.asarray(cam_rotation, float), np.asarray(cam_translation, float)
    f = np.asarray(focal_px, float)[:, None, None]                                          # (C,1,1)
    obs = np.asarray(observed, float)
    w2 = np.where(np.isfinite(obs).all(-1), np.asarray(weights, float), 0.0)                # (C,F,J)
    obs = np.nan_to_num(obs)
    rot = np.array(init_rotation, dtype=np.float64)
    t = np.array(init_translation, dtype=np.float64)
    n_frames = x.shape[0]
    if known is not None:
        kn = np.asarray(known, float)
        sig3 = np.broadcast_to(np.asarray(known_sigma_m, dtype=float), kn.shape[:-1])
        w3 = np.where(np.isfinite(kn).all(-1) & np.isfinite(sig3), 1.0, 0.0)              # (F,J)
        kn = np.nan_to_num(kn)
        # both kinds of residual in units of their standard deviation
        k3 = (1.0 / np.where(w3 > 0, sig3, 1.0))[..., None]                                # (F,J,1)
    w2 = w2 / observation_sigma_px**2
    lam = np.full(n_frames, 1e-3)

    def residuals(rot_: FloatArray, t_: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        p = np.einsum("fij,fkj->fki", rot_, x) + t_[:, None]                                # (F,J,3) world
        q = to_cameras(rc, tc, p)                                                           # (C,F,J,3)
        r = (normalized_projection(q)[0] - obs) * f[..., None]                               # (C,F,J,2) px
        return p, q, r

    def cost(r: FloatArray, p: FloatArray, wr: FloatArray) -> FloatArray:
        c = (wr[..., None] * r**2).sum((0, 2, 3))
        if known is not None:
            c = c + (w3[..., None] * ((p - kn) * k3) ** 2).sum((1, 2))
        return c

    p, q, r = residuals(rot, t)
    for _ in range(iterations):
        norm = np.linalg.norm(r, axis=-1)
        wr = w2 * huber_weights(norm, huber_px)                                             # (C,F,J)
        dproj = normalized_projection_jacobian(q) * f[..., None, None]                      # (C,F,J,2,3) px/m
        # world point derivative: d p / d(omega) = -[R x]_x (left increment), d p / d t = I
        rx = p - t[:, None]                                                                 # (F,J,3)
        dp = np.zeros(rx.shape + (6,))
        dp[..., 0, 1], dp[..., 0, 2] = rx[..., 2], -rx[..., 1]
        dp[..., 1, 0], dp[..., 1, 2] = -rx[..., 2], rx[..., 0]
        dp[..., 2, 0], dp[..., 2, 1] = rx[..., 1], -rx[..., 0]
        dp[..., :, 3:] = np.eye(3)
        jac = np.einsum("cfkab,cbd,fkde->cfkae", dproj, rc, dp)                             # (C,F,J,2,6)
        jtj = np.einsum("cfk,cfkai,cfkaj->fij", wr, jac, jac)
        jtr = np.einsum("cfk,cfkai,cfka->fi", wr, jac, r)
        if known is not None:
            w3k = w3 * k3[..., 0] ** 2
            jtj = jtj + np.einsum("fk,fkai,fkaj->fij", w3k, dp, dp)
            jtr = jtr + np.einsum("fk,fkai,fka->fi", w3k, dp, p - kn)
        old = cost(r, p, wr)
        damp = jtj + lam[:, None, None] * (np.einsum("fii->fi", jtj)[..., None] * np.eye(6) + 1e-9 * np.eye(6))
        step = -np.linalg.solve(damp, jtr[..., None])[..., 0]
        new_rot = rodrigues_to_matrix(step[:, :3]) @ rot
        new_t = t + step[:, 3:]
        p_new, q_new, r_new = residuals(new_rot, new_t)
        better = cost(r_new, p_new, wr) < old
        rot = np.where(better[:, None, None], new_rot, rot)
        t = np.where(better[:, None], new_t, t)
        lam = np.where(better, lam * 0.3, lam * 10.0)
        p, q, r = residuals(rot, t)
    norm = np.linalg.norm(r, axis=-1)
    robust = np.minimum(norm, huber_px * 3)
    n_obs = (w2 > 0).sum((0, 2))
    w2 = w2 * observation_sigma_px**2
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt((np.where(w2 > 0, robust, 0.0) ** 2).sum((0, 2)) / n_obs)
    return ViewFit(rot, t, np.where(n_obs > 0, rms, np.nan), n_obs)
