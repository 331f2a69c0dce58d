"""Fill joints the rig could not triangulate with the factorization prior's canonical body shape.

:func:`fill_with_prior`: for every frame, the network reads each camera's 2D
(:meth:`~posestudio.models.factorization.prior.FactorizationPrior.read_views`, one batch over
cameras x frames); the canonical shapes are averaged over the cameras that see enough joints and
aligned to the frame's reconstructed joints with a similarity transform (at least ``min_known``
joints), filling only the missing joints. The canonical shape is only defined up to a mirror
image (orthographic projection), so both it and its mirror are aligned and the one with the
smaller residual on the known joints is kept. A body seen by too few reconstructed joints is
placed by model-based PnP on the cameras' 2D (:mod:`.view_fit`), scaled to the performer's bone
lengths; filled joints are then put at bone length and on a seeing camera's ray
(:mod:`.bone_constraints`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posestudio.core.alignment import procrustes_align
from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.skeleton import bone_length_per_joint, bone_lengths, scale_to_lengths
from posestudio.models.factorization.prior import MIRROR, FactorizationPrior, ViewReadings
from posestudio.models.keypoints import H36M17

from .bone_constraints import constrain_filled_joints
from .view_fit import fit_pose_to_views

#: Standard deviation given to triangulated joints when placing a body by its views, metres.
KNOWN_SIGMA_M = 0.02


def fill_with_prior(prior: FactorizationPrior, points3d: FloatArray, keypoints2d: FloatArray, rig: Any | None = None, *,
         min_known: int = 4, min_confidence: float = 0.3, min_view_joints: int = 6,
         bone_lengths: FloatArray | None = None, anchors: FloatArray | None = None,
         anchor_sigma: FloatArray | None = None, max_view_fit_px: float = 15.0,
         place_by_views: bool = True, return_rms: bool = False
         ) -> tuple[FloatArray, BoolArray] | tuple[FloatArray, BoolArray, FloatArray]:
    """Fill joints missing from a reconstruction with the aligned canonical shape.

    Frames with at least ``min_known`` reconstructed joints: the cameras' mean canonical shape
    is aligned to them (similarity). Frames with fewer (the body seen by a single camera, say),
    when ``rig`` and ``bone_lengths`` are given: the shape, scaled to the bone lengths, is
    placed by model-based PnP on the cameras' 2D (:mod:`posestudio.reconstruction.view_fit`).
    With ``rig`` and ``bone_lengths``, every filled joint is then put at its bone's length from
    its parent and, where a camera sees it, on that camera's ray
    (:mod:`posestudio.reconstruction.bone_constraints`).

    Args:
        points3d: ``(F, 17, 3)`` triangulated joints, metres; NaN where unknown (every finite
            joint is taken as well triangulated and used for the alignment).
        keypoints2d: ``(C, F, 17, 3)`` the cameras' 2D keypoints (pixels, confidence).
        rig: the calibrated rig of ``keypoints2d`` (or None: pixels used as they are).
        min_known: frames with fewer finite joints are not aligned by similarity (it needs >= 3
            non-collinear points; 4 keeps it well posed).
        min_confidence: 2D joints below it count as missing.
        min_view_joints: minimum 2D joints for a camera's view to be used.
        bone_lengths: ``(B,)`` or, for a causal estimate, ``(F, B)`` performer's bone lengths in
            metres for the H36M17 bones (NaN where unknown), or None.
        anchors, anchor_sigma: optional ``(F, 17, 3)`` soft positions (metres) and their
            standard deviations ``(F, 17)`` for joints that are missing, e.g. the torso's
            trajectory carried across the gap (:func:`posestudio.reconstruction.anchors.torso_anchors`);
            they fix the depth of a body seen by one camera.
        place_by_views: whether to place bodies with too few known joints by model-based PnP.
        max_view_fit_px: a PnP-placed frame is kept only if the robust RMS reprojection error
            of its 2D joints is below this (pixels).
        return_rms: also return each frame's robust RMS reprojection error of its PnP placement.
    Returns:
        ``(filled (F, 17, 3), filled_mask (F, 17))``: known joints unchanged (bit for bit),
        missing joints replaced where the frame could be placed; ``filled_mask`` marks them. With
        ``return_rms``, also ``(F,)`` pixels (NaN where the frame was not placed by PnP).
    """
    p3 = np.asarray(points3d, dtype=np.float64)
    known = np.isfinite(p3).all(-1)                                                    # (F, J)
    views = prior.read_views(keypoints2d, rig, min_confidence, min_view_joints)
    shapes, ok = views.mean_shape()
    shapes = np.where(ok[:, None, None], shapes, 0.0)
    target = np.where(known[..., None], p3, 0.0)
    can = ok & (known.sum(-1) >= min_known)
    cand = []
    for s in (shapes, shapes * MIRROR.diagonal()):                                                 # shape and mirror
        aligned, fr_ok = procrustes_align(s, target, known, min_joints=min_known)
        res = np.where(known, np.linalg.norm(np.nan_to_num(aligned) - target, axis=-1), 0.0).sum(-1)
        cand.append((aligned, np.where(fr_ok, res, np.inf)))
    use_mirror = cand[1][1] < cand[0][1]
    aligned = np.where(use_mirror[:, None, None], cand[1][0], cand[0][0])
    frame_ok = can & np.isfinite(np.minimum(cand[0][1], cand[1][1]))
    lengths = None
    rms = np.full(p3.shape[0], np.nan)
    if rig is not None and bone_lengths is not None:
        lengths = np.broadcast_to(np.asarray(bone_lengths, dtype=np.float64),
                                  (p3.shape[0], len(H36M17.bones)))
        if place_by_views:
            placed, placed_ok, rms = _place_by_views(views, shapes, p3, known, rig, lengths, ok & ~frame_ok,
                                                     max_view_fit_px, anchors, anchor_sigma)
            aligned = np.where(placed_ok[:, None, None], placed, aligned)
            frame_ok = frame_ok | placed_ok
    filled_mask = ~known & frame_ok[:, None] & np.isfinite(aligned).all(-1)
    filled = p3.copy()
    filled[filled_mask] = aligned[filled_mask]
    if lengths is not None and filled_mask.any():
        per_joint = bone_length_per_joint(lengths, H36M17.bone_indices, p3.shape[1])
        filled, _ = constrain_filled_joints(filled, filled_mask, H36M17.parents, H36M17.topological_order(),
                                            per_joint, rig.centers, rig.ray_directions(views.xy), views.valid)
    return (filled, filled_mask, rms) if return_rms else (filled, filled_mask)


def _place_by_views(views: "ViewReadings", shapes: FloatArray, p3: FloatArray, known: BoolArray,
                    rig: Any, lengths: FloatArray, frames: BoolArray, max_rms_px: float,
                    anchors: FloatArray | None = None, anchor_sigma: FloatArray | None = None,
                    ) -> tuple[FloatArray, BoolArray, FloatArray]:
    """Model-based PnP for ``frames`` (``(F,)``): world joints ``(F, J, 3)``, which were placed, and
    the placements' robust RMS reprojection error ``(F,)`` pixels (NaN where not placed)."""
    out = np.full(p3.shape, np.nan)
    placed = np.zeros(p3.shape[0], bool)
    rms_out = np.full(p3.shape[0], np.nan)
    idx = np.nonzero(frames & views.use.any(0))[0]
    if idx.size == 0:
        return out, placed, rms_out
    bones = H36M17.bone_indices
    x = shapes[idx]                                                                     # (n, J, 3) unit RMS
    sigma = scale_to_lengths(bone_lengths(x, bones), lengths[idx])                        # (n,) metres per unit
    keep = np.isfinite(sigma)
    idx, x, sigma = idx[keep], x[keep], sigma[keep]
    if idx.size == 0:
        return out, placed, rms_out
    metric = x * sigma[:, None, None]
    rc, tc, focal = rig.rotations, rig.translations, rig.focal_x
    # start from the camera that sees most joints: weak perspective from its rotation and scale
    best = np.argmax(np.where(views.use[:, idx], views.valid[:, idx].sum(-1), -1), axis=0)   # (n,)
    rv = views.rotation[best, idx]                                                       # (n, 3, 3)
    depth = sigma / np.maximum(views.scale[best, idx] * views.radius[best, idx], 1e-9)
    c2 = views.centre[best, idx]
    t_cam = np.concatenate([c2, np.ones((idx.size, 1))], -1) * depth[:, None]
    r_cb, t_cb = rc[best], tc[best]
    obs = views.xy[:, idx]
    w = np.where(views.valid[:, idx], np.clip(views.confidence[:, idx], 0.0, 1.0), 0.0)
    kn = np.where(known[idx][..., None], p3[idx], np.nan)
    kn_sigma = np.where(known[idx], KNOWN_SIGMA_M, np.nan)
    if anchors is not None and anchor_sigma is not None:
        use_anchor = ~known[idx] & np.isfinite(anchors[idx]).all(-1) & np.isfinite(anchor_sigma[idx])
        kn = np.where(use_anchor[..., None], anchors[idx], kn)
        kn_sigma = np.where(use_anchor, anchor_sigma[idx], kn_sigma)
    fits = []
    for shape, rot in ((metric, rv), (metric * MIRROR.diagonal(), MIRROR @ rv @ MIRROR)):
        r_w = np.einsum("nji,njk->nik", r_cb, rot)                                        # Rc^T Rv
        t_w = np.einsum("nji,nj->ni", r_cb, t_cam - t_cb)
        fit = fit_pose_to_views(shape, rc, tc, focal, obs, w, r_w, t_w, known=kn, known_sigma_m=kn_sigma)
        fits.append((fit.apply(shape), fit.rms_px))
    pick = np.nan_to_num(fits[1][1], nan=np.inf) < np.nan_to_num(fits[0][1], nan=np.inf)
    pts = np.where(pick[:, None, None], fits[1][0], fits[0][0])
    rms = np.where(pick, fits[1][1], fits[0][1])
    accept = np.isfinite(rms) & (rms < max_rms_px)
    out[idx[accept]] = pts[accept]
    placed[idx[accept]] = True
    rms_out[idx[accept]] = rms[accept]
    return out, placed, rms_out


def evaluate_fill(prior: FactorizationPrior, poses: FloatArray, rig: Any, n_drop: int = 3, seed: int = 0,
                  noise_px: float = 1.5, triangulation_noise_m: float = 0.01,
                  mean_shape: FloatArray | None = None, drop_2d: bool = False) -> dict[str, float]:
    """Error of :func:`fill_with_prior` on joints removed from well-triangulated frames.

    The poses are projected into ``rig`` (plus Gaussian pixel noise) to give the 2D; the "known"
    3D joints are the truth plus Gaussian noise (``triangulation_noise_m`` per axis, a good
    triangulation); ``n_drop`` random joints per frame are removed and filled.

    Args:
        prior: the prior.
        poses: ``(F, 17, 3)`` ground-truth world poses, metres (inside the rig's volume).
        rig: a calibrated :class:`~posestudio.core.rig.CameraRig`.
        n_drop: joints removed per frame.
        seed: seeds the noise and the removed joints.
        noise_px: 2D noise, pixels.
        triangulation_noise_m: noise of the known 3D joints, metres.
        mean_shape: optional ``(17, 3)`` shape for the baseline of filling from a
            similarity-aligned mean shape.
        drop_2d: also remove the removed joints from every camera's 2D (a joint no camera sees;
            otherwise the cameras still see it, e.g. it failed triangulation's checks).
    Returns:
        dict (millimetres): ``fill_mm`` mean error of the filled joints, ``fill_median_mm``,
        ``filled_fraction`` (of the removed joints), ``mean_shape_fill_mm`` when ``mean_shape`` is
        given, ``centroid_mm`` (filling with the known joints' centroid).
    """
    rng = np.random.default_rng(seed)
    truth = np.asarray(poses, dtype=np.float64)
    f, j, _ = truth.shape
    pix = rig.project(truth)
    kp2d = np.concatenate([pix + rng.normal(0.0, noise_px, pix.shape), np.ones(pix.shape[:-1] + (1,))], -1)
    known3d = truth + rng.normal(0.0, triangulation_noise_m, truth.shape)
    drop = np.zeros((f, j), bool)
    while (drop.sum(1) < n_drop).any():
        rows = np.nonzero(drop.sum(1) < n_drop)[0]
        drop[rows, rng.integers(0, j, rows.size)] = True
    points = np.where(drop[..., None], np.nan, known3d)
    if drop_2d:
        kp2d[:, drop] = np.nan
    filled, fmask = fill_with_prior(prior, points, kp2d, rig)
    err = np.linalg.norm(filled - truth, axis=-1)[fmask]
    out = {"fill_mm": 1000 * float(err.mean()), "fill_median_mm": 1000 * float(np.median(err)),
           "filled_fraction": float(fmask.sum() / drop.sum())}
    if mean_shape is not None:
        ms = np.broadcast_to(np.asarray(mean_shape, dtype=np.float64), truth.shape)
        aligned, _ = procrustes_align(ms, np.where(drop[..., None], 0.0, points), ~drop)
        out["mean_shape_fill_mm"] = 1000 * float(np.linalg.norm(aligned - truth, axis=-1)[drop].mean())
    centroid = np.nanmean(points, axis=1, keepdims=True)
    out["centroid_mm"] = 1000 * float(np.linalg.norm(centroid - truth, axis=-1)[drop].mean())
    return out
