"""Compare a calibrated rig with a ground-truth rig (synthetic takes, reference calibrations).

A calibrator may put its world frame anywhere; :func:`align_rig_to_truth` brings an estimated rig
into the truth's world frame (rigid by default: the board fixes the scale, so the scale factor
that would best match is only reported), then :func:`score_against_truth` compares intrinsics and
poses camera by camera. Units: metres and radians inside; reported in mm, px, degrees, percent.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import nearest_rotation, rotation_angle_deg

from .errors import CalibrationInputError

__all__ = ["align_rig_to_truth", "score_against_truth", "match_cameras"]


# --------------------------------------------------------------------------- camera matching
def match_cameras(est: CameraRig, names: list[str]) -> list[int]:
    """Indices into ``est`` of the cameras called ``names`` (by name, or by order as a fallback).

    Args:
        est: a rig.
        names: camera names in the order wanted (truth rig or detections).
    Returns:
        ``len(names)`` indices into ``est.cameras``.
    Raises:
        CalibrationInputError: when names differ and the camera counts differ too.
    """
    if set(names) <= set(est.names):
        return [est.names.index(n) for n in names]
    if len(names) != len(est):
        raise CalibrationInputError(f"cannot pair cameras: the rig has {', '.join(est.names)}, wanted "
                                    f"{', '.join(names)} (by name, or the same number of cameras in order)")
    return list(range(len(names)))


# --------------------------------------------------------------------------- ground truth
def _similarity_from_cameras(est: CameraRig, truth: CameraRig, order: list[int]
                             ) -> tuple[FloatArray, FloatArray, float]:
    """Best similarity ``X_truth = s * R @ X_est + t`` from camera centres and orientations.

    The rotation maximises ``tr(R^T M)`` with ``M`` the centred cross-covariance of the camera
    centres plus ``lambda * sum_i R_truth_i^T R_est_i`` (each camera's orientation says what the
    world rotation must be); ``lambda`` is the mean squared centre spread, so both terms weigh
    alike and the solution stays defined for two cameras or collinear centres.

    Returns:
        ``(R (3, 3), t (3,), s)``; ``t`` is for ``s`` applied (see :func:`align_rig_to_truth`).
    """
    ce, ct = est.centers[order], truth.centers                    # (C, 3) metres
    re, rt = est.rotations[order], truth.rotations                # (C, 3, 3)
    mu_e, mu_t = ce.mean(0), ct.mean(0)
    a, b = ce - mu_e, ct - mu_t
    spread = float((b**2).sum(1).mean())
    lam = spread if spread > 1e-12 else 1.0
    m = b.T @ a / len(a) + lam * np.einsum("cji,cjk->ik", rt, re) / len(a)
    rot = nearest_rotation(m)
    den = float((a**2).sum())
    scale = float(np.einsum("ci,ci->", b, a @ rot.T) / den) if den > 1e-12 else 1.0
    return rot, mu_t, scale


def align_rig_to_truth(est: CameraRig, truth: CameraRig, rescale: bool = False) -> CameraRig:
    """Express an estimated rig in the truth's world frame.

    The two world frames differ by a rigid transform (each calibrator picks its own origin and
    axes). The board fixes the scale, so by default the scale is **not** changed; the factor that
    would best match the truth is still computed and stored in the metadata.

    Args:
        est: estimated rig (cameras matched to ``truth`` by name, else by order).
        truth: ground-truth rig.
        rescale: also apply the best scale factor (only to separate scale from shape errors).
    Returns:
        A new rig with ``truth``'s camera order and names of ``est``'s cameras, poses moved into
        the truth's world frame. ``metadata["alignment"]`` holds ``rotation`` (3, 3),
        ``translation`` (3,) metres, ``scale_factor`` (truth / estimate) and ``scale_applied``.
    """
    order = match_cameras(est, truth.names)
    rot, mu_t, scale = _similarity_from_cameras(est, truth, order)
    mu_e = np.stack([est.cameras[i].center for i in order]).mean(0)
    s = scale if rescale else 1.0
    t = mu_t - s * rot @ mu_e
    cams = []
    for i in order:
        c = est.cameras[i]
        # x_cam = R_c X_e + t_c with X_e = R^T (X_t - t) / s, multiplied through by s.
        r_new = c.rotation @ rot.T
        t_new = s * c.translation - r_new @ t
        cams.append(replace(c.copy(), rotation=r_new, translation=t_new))
    meta = dict(est.metadata)
    meta["alignment"] = {"rotation": rot, "translation": t, "scale_factor": scale, "scale_applied": rescale}
    return CameraRig(cams, meta)


def score_against_truth(est: CameraRig, truth: CameraRig, align: bool = True,
                        rescale: bool = False) -> dict:
    """Compare an estimated rig with the ground truth, camera by camera.

    Args:
        est: estimated rig (any world frame when ``align``).
        truth: ground-truth rig.
        align: first align ``est`` to the truth's world frame (:func:`align_rig_to_truth`).
        rescale: let the alignment rescale too (reported either way as ``scale_factor``).
    Returns:
        ``{"cameras": {name: {...}}, "mean": {...}, "scale_factor": float}`` where each camera and
        the mean have ``focal_error_pct`` (mean of |fx - fx*| / fx* and |fy - fy*| / fy*, percent),
        ``principal_point_error_px`` (Euclidean, pixels), ``center_error_mm`` (camera centre,
        millimetres) and ``rotation_error_deg`` (angle of R R*^T, degrees).
    """
    aligned = align_rig_to_truth(est, truth, rescale) if align else est.subset(
        [est.names[i] for i in match_cameras(est, truth.names)])
    per: dict[str, dict[str, float]] = {}
    for ce, ct in zip(aligned.cameras, truth.cameras):
        f_e, f_t = np.array(ce.focal), np.array(ct.focal)
        per[ct.name] = {
            "focal_error_pct": float(np.mean(np.abs(f_e - f_t) / f_t) * 100.0),
            "principal_point_error_px": float(np.linalg.norm(np.subtract(ce.principal_point, ct.principal_point))),
            "center_error_mm": float(np.linalg.norm(ce.center - ct.center) * 1000.0),
            "rotation_error_deg": float(rotation_angle_deg(ce.rotation, ct.rotation)),
        }
    keys = ("focal_error_pct", "principal_point_error_px", "center_error_mm", "rotation_error_deg")
    mean = {k: float(np.mean([v[k] for v in per.values()])) for k in keys}
    scale = float(aligned.metadata.get("alignment", {}).get("scale_factor", 1.0))
    return {"cameras": per, "mean": mean, "scale_factor": scale}
