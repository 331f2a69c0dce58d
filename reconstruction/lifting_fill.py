"""Fill joints the rig could not triangulate with the lifting network's 3D from one camera.

The third fill mechanism of the offline path, beside the single-camera rays (:mod:`.ray_carry`)
and the factorization prior (:mod:`.prior_fill`), run after the rays and before the prior.
:func:`lift_cameras` lifts every camera that sees the body, one batched pass per camera
(:class:`posestudio.models.lifting.lifter.Lifter`), in the frames that need it and those their
windows read. :func:`fill_with_lifting` then, for every such frame, takes every camera's lift
(``cameras="mean"``, the default) or the lift of the camera that sees the frame best, and

* where at least ``min_known`` joints are reconstructed: aligns each lift to them by a similarity
  (as the prior's shape is aligned) and averages them (weighted by the joints each camera sees);
* where fewer are (a body one camera sees): places the best camera's lift where the network put
  it in that camera's frame (its root-position branch), scaled about the camera centre so its bones match
  the performer's (projections unchanged), then into the world; from there the body is moved
  rigidly to fit the cameras' 2D, pulled towards the torso's trajectory carried across the gap
  (model-based PnP, :mod:`.view_fit`, as the prior's shapes are placed); a body that does not fit
  the 2D is left to the prior.

Which missing joints it may fill is chosen per case (:class:`~.options.LiftingFillOptions`, by
measurement: ``benchmarks/reconstruction_ablation.py``): every missing joint of a body one camera
alone sees (:func:`one_camera_frames`) with too few reconstructed joints to align to (by default;
with enough, the prior's aligned shape measured as good or better), and, in frames two or more
cameras see, joints one camera still sees or joints no camera sees; only missing joints are
filled. They are then put at bone length and on a seeing camera's ray where one passes close
(:mod:`.bone_constraints`), as the prior's are. Offline only: the window reads frames after the one
lifted.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.alignment import procrustes_align
from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_per_joint, bone_lengths, scale_to_lengths
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import Lifter

from .bone_constraints import constrain_filled_joints
from .options import LiftingFillOptions
from .prior_fill import KNOWN_SIGMA_M
from .view_fit import fit_pose_to_views


def one_camera_frames(usable: BoolArray, min_view_joints: int) -> BoolArray:
    """``(F,)`` frames in which at most one camera sees the body (``min_view_joints`` or more
    confident joints), from ``usable (C, F, J)``."""
    return (usable.sum(-1) >= min_view_joints).sum(0) <= 1


def fillable(known: BoolArray, usable: BoolArray, options: LiftingFillOptions) -> BoolArray:
    """``(F, J)`` missing joints the options let the lifting network fill.

    Args:
        known: ``(F, J)`` reconstructed joints; usable: ``(C, F, J)`` confident 2D detections.
    """
    o = options
    alone = one_camera_frames(usable, o.min_view_joints)[:, None]
    # a lone camera's body with enough reconstructed joints (the rays carried them) is the prior's
    # to align unless align_one_camera_bodies: measured the better there over three seeds
    body = o.one_camera_bodies & (o.align_one_camera_bodies | (known.sum(-1, keepdims=True) < o.min_known))
    seen = usable.any(0)
    others = np.where(seen, o.seen_joints, o.unseen_joints)
    return ~known & np.where(alone, body, others)


def lift_cameras(lifter: Lifter, xy: FloatArray, weight: FloatArray, fps: float, min_view_joints: int,
                 frames: BoolArray | None = None, rotations: FloatArray | None = None) -> tuple[FloatArray, BoolArray]:
    """Every camera's lift of a take, in its own camera frame.

    Args:
        lifter: the network; xy: ``(C, F, 17, 2)`` normalised image coordinates (lens undone, NaN
            where absent); weight: ``(C, F, 17)`` confidences (0 where not to be used);
        fps: the take's frame rate, Hz; min_view_joints: frames of a camera with fewer weighted
            joints are not lifted.
        frames: ``(F,)`` the frames wanted (None: all); only their windows are lifted, so a long
            take with a few gaps costs a few windows.
        rotations: ``(C, 3, 3)`` the cameras' world-to-camera rotations: each is lifted in its
            upright frame (its roll undone; :mod:`posestudio.models.lifting.upright`). None: as is.
    Returns:
        ``(points (C, F, 17, 3) camera-frame metres, NaN where not lifted; lifted (C, F))``.
        Cameras that never see ``min_view_joints`` joints are not run.
    """
    n_c, n_f = xy.shape[:2]
    points = np.full((n_c, n_f, H36M17.n_joints, 3), np.nan)
    lifted = np.zeros((n_c, n_f), bool)
    enough = (weight > 0).sum(-1) >= min_view_joints                                        # (C, F)
    if frames is not None:
        enough &= np.asarray(frames, dtype=bool)[None]
    for c in np.flatnonzero(enough.any(-1)):          # one batched pass per camera that sees the body
        points[c], lifted[c] = lifter.lift_normalised(xy[c], weight[c], fps, min_view_joints, frames=frames,
                                                      camera_rotation=None if rotations is None else rotations[c])
    return points, lifted


def fill_with_lifting(points3d: FloatArray, lifts: FloatArray, lifted: BoolArray, usable: BoolArray,
                      confidence: FloatArray, rig: CameraRig, bone_lengths_m: FloatArray | None,
                      options: LiftingFillOptions, directions: FloatArray | None = None, *,
                      xy: FloatArray | None = None, anchors: FloatArray | None = None,
                      anchor_sigma: FloatArray | None = None, return_rms: bool = False,
                      ) -> tuple[FloatArray, BoolArray] | tuple[FloatArray, BoolArray, FloatArray]:
    """Fill missing joints from the cameras' lifts (the cases ``options`` allows, :func:`fillable`).

    Args:
        points3d: ``(F, 17, 3)`` reconstructed joints, world metres, NaN where missing (every
            finite joint is taken as known and used for the alignment).
        lifts: ``(C, F, 17, 3)`` each camera's lift in its camera frame (:func:`lift_cameras`);
            lifted: ``(C, F)`` where it exists.
        usable: ``(C, F, 17)`` confident 2D detections; confidence: ``(C, F, 17)`` their
            confidence (which camera sees a frame best: most usable joints, then confidence).
        rig: the cameras, in the lifts' order.
        bone_lengths_m: ``(B,)`` the performer's H36M17 bone lengths, metres (NaN where unknown),
            or None: bodies with too few known joints are then not placed.
        options: what may be filled (:class:`~.options.LiftingFillOptions`).
        directions: ``(C, F, 17, 3)`` unit rays through the 2D (world frame), for putting filled
            joints on a seeing camera's ray (None: only bone lengths).
        xy: ``(C, F, 17, 2)`` normalised image coordinates; with it (and ``options.place_by_views``)
            a placed body is then moved rigidly to fit every camera's 2D, its reconstructed joints
            and ``anchors`` (``(F, 17, 3)`` metres, NaN where none; ``anchor_sigma`` ``(F, 17)``
            metres: e.g. the torso's trajectory carried across the gap) by
            :func:`~.view_fit.fit_pose_to_views`; a frame whose fit is worse than
            ``options.max_view_fit_px`` is not filled (the prior may place it).
        return_rms: also return each frame's robust RMS reprojection error of its placement.
    Returns:
        ``(filled (F, 17, 3), by_lifting (F, 17))``: known joints unchanged (bit for bit), the
        filled ones marked. With ``return_rms``, also ``(F,)`` pixels (NaN where the frame was not
        placed and fitted to the views).
    """
    p3 = np.asarray(points3d, dtype=np.float64)
    n_f, n_j, _ = p3.shape
    known = np.isfinite(p3).all(-1)                                                     # (F, J)
    none = np.zeros((n_f, n_j), bool)
    rms = np.full(n_f, np.nan)
    if known.all() or not lifted.any():
        return (p3.copy(), none, rms) if return_rms else (p3.copy(), none)
    # the best-seeing lifted camera of each frame
    n_usable = usable.sum(-1)                                                            # (C, F)
    mean_conf = np.where(usable, np.nan_to_num(confidence), 0.0).sum(-1) / np.maximum(n_usable, 1)
    score = np.where(lifted, n_usable + np.clip(mean_conf, 0.0, 1.0) * 0.5, -np.inf)
    best = np.argmax(score, axis=0)                                                      # (F,)
    has = np.isfinite(score.max(axis=0))
    frames = np.arange(n_f)
    cam_pts = lifts[best, frames]                                                        # (F, J, 3)
    rot, trans = rig.rotations[best], rig.translations[best]                             # (F, 3, 3), (F, 3)

    def to_world(x: FloatArray, rows: IntArray) -> FloatArray:
        """``(n, J, 3)`` camera-frame points of frames ``rows`` (each in its best camera) to the world."""
        return np.einsum("fji,fkj->fki", rot[rows], x - trans[rows, None])

    o = options
    n_known = known.sum(-1)
    wanted = fillable(known, usable, o)                                                 # (F, J)
    aligned_rows = has & (n_known >= o.min_known) & wanted.any(-1)
    out = np.full_like(p3, np.nan)
    if aligned_rows.any():
        rows = np.flatnonzero(aligned_rows)
        if o.cameras == "mean":
            out[rows] = _mean_aligned(p3[rows], known[rows], lifts[:, rows], lifted[:, rows], n_usable[:, rows],
                                      rig, o.min_known)
        else:
            world = to_world(cam_pts[rows], rows)
            al, ok = procrustes_align(np.nan_to_num(world), np.where(known[rows, :, None], p3[rows], 0.0),
                                      known[rows] & np.isfinite(world).all(-1), min_joints=o.min_known)
            al = np.where(np.isfinite(world).all(-1, keepdims=True), al, np.nan)
            out[rows[ok]] = al[ok]
    placed_rows = has & (n_known < o.min_known)
    if placed_rows.any() and bone_lengths_m is not None:
        # scaled about the camera centre: the body and its distance together, projections unchanged
        scale = np.full(n_f, np.nan)
        scale[placed_rows] = scale_to_lengths(bone_lengths(cam_pts[placed_rows], H36M17.bone_indices),
                                              np.asarray(bone_lengths_m, dtype=np.float64))
        placed = to_world(cam_pts * scale[:, None, None], frames)
        if o.place_by_views and xy is not None:
            rows = np.flatnonzero(placed_rows & np.isfinite(placed).all(-1).all(-1))
            placed[rows], rms[rows] = _fit_to_views(placed[rows], p3[rows], known[rows], usable[:, rows],
                                                    confidence[:, rows], xy[:, rows], rig, o.max_view_fit_px,
                                                    None if anchors is None else anchors[rows],
                                                    None if anchor_sigma is None else anchor_sigma[rows])
        out = np.where(placed_rows[:, None, None], placed, out)
    by_lifting = wanted & np.isfinite(out).all(-1)
    filled = p3.copy()
    filled[by_lifting] = out[by_lifting]
    if by_lifting.any() and bone_lengths_m is not None and o.snap_to_rays and directions is not None:
        per_joint = bone_length_per_joint(np.asarray(bone_lengths_m, dtype=np.float64), H36M17.bone_indices, n_j)
        filled, _ = constrain_filled_joints(filled, by_lifting, H36M17.parents, H36M17.topological_order(),
                                            per_joint, rig.centers, directions, usable)
    rms = np.where(by_lifting.any(-1), rms, np.nan)
    return (filled, by_lifting, rms) if return_rms else (filled, by_lifting)


def _fit_to_views(placed: FloatArray, p3: FloatArray, known: BoolArray, usable: BoolArray, confidence: FloatArray,
                  xy: FloatArray, rig: CameraRig, max_rms_px: float, anchors: FloatArray | None,
                  anchor_sigma: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    """Bodies placed by the lift ``(n, J, 3)`` moved rigidly (about their root) to fit the cameras'
    2D ``xy (C, n, J, 2)``, the known joints and the anchors; frames whose fit is worse than
    ``max_rms_px`` (robust RMS, pixels) are NaN (left to the prior). Also the fits' robust RMS
    ``(n,)`` pixels (NaN where rejected)."""
    if placed.shape[0] == 0:
        return placed, np.full(0, np.nan)
    root = placed[:, :1]
    shape = placed - root
    kn = np.where(known[..., None], p3, np.nan)
    kn_sigma = np.where(known, KNOWN_SIGMA_M, np.nan)
    if anchors is not None and anchor_sigma is not None:
        use = ~known & np.isfinite(anchors).all(-1) & np.isfinite(anchor_sigma)
        kn = np.where(use[..., None], anchors, kn)
        kn_sigma = np.where(use, anchor_sigma, kn_sigma)
    w = np.where(usable, np.clip(np.nan_to_num(confidence), 0.0, 1.0), 0.0)
    eye = np.broadcast_to(np.eye(3), (placed.shape[0], 3, 3))
    fit = fit_pose_to_views(shape, rig.rotations, rig.translations, rig.focal_x, np.where(usable[..., None], xy, np.nan),
                            w, eye, root[:, 0], known=kn, known_sigma_m=kn_sigma)
    ok = np.isfinite(fit.rms_px) & (fit.rms_px < max_rms_px)
    return np.where(ok[:, None, None], fit.apply(shape), np.nan), np.where(ok, fit.rms_px, np.nan)


def _mean_aligned(p3: FloatArray, known: BoolArray, lifts: FloatArray, lifted: BoolArray, n_usable: IntArray,
                  rig: CameraRig, min_known: int) -> FloatArray:
    """Every lifted camera's lift aligned to the known joints (similarity), averaged with weights
    the number of joints each camera sees.

    Args:
        p3: ``(n, J, 3)`` world metres, NaN where missing; known: ``(n, J)``; lifts: ``(C, n, J, 3)``
        camera frames; lifted: ``(C, n)``; n_usable: ``(C, n)``; rig: the cameras; min_known:
        joints an alignment needs.
    Returns:
        ``(n, J, 3)`` the mean aligned lift (NaN where no camera's alignment succeeded).
    """
    n_c, n, n_j, _ = lifts.shape
    world = np.einsum("cji,cnkj->cnki", rig.rotations, lifts - rig.translations[:, None, None])   # (C, n, J, 3)
    ok_pts = np.isfinite(world).all(-1)
    target = np.broadcast_to(np.where(known[..., None], p3, 0.0), world.shape)
    valid = known[None] & ok_pts
    al, ok = procrustes_align(np.nan_to_num(world).reshape(-1, n_j, 3), target.reshape(-1, n_j, 3),
                              valid.reshape(-1, n_j), min_joints=min_known)
    al = al.reshape(world.shape)
    w = np.where(ok.reshape(n_c, n) & lifted, n_usable, 0).astype(np.float64)[..., None, None]   # (C, n, 1, 1)
    w = np.where(ok_pts[..., None], w, 0.0)
    total = w.sum(0)
    mean = (np.where(w > 0, np.nan_to_num(al), 0.0) * w).sum(0) / np.maximum(total, 1e-12)
    return np.where(total > 0, mean, np.nan)

