"""The offline path: a whole take at once, with look-ahead, in memory bounded by a window.

Triangulation, the identity check, the prior and the report run over chunks of frames (each frame's
result does not depend on the chunk it is in); smoothing, carrying along rays and the anchors keep
whole-take arrays of a few numbers per frame and joint; the refinement solves overlapping windows
(:func:`~.trajectory_refine.refine_in_windows`). So peak memory is that of a window plus a few
compact arrays per frame, and time grows linearly with the take. Where a first pass finds a
camera's detections of a joint steadily off (:func:`view_bias`), the take is reconstructed once
more without that offset: twice the time on such takes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.keypoints_file import Points3D
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_per_joint
from posestudio.models.factorization.prior import FactorizationPrior
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import Lifter

from .anchors import torso_anchors
from .filters import butterworth_zero_phase
from .lifting_fill import fill_with_lifting, fillable, lift_cameras
from .options import PriorFillOptions, ReconstructionOptions, ViewBiasOptions
from .plausibility import implausible_joints, reference_bone_lengths
from .prior_fill import fill_with_prior
from .ray_carry import propagate_along_rays
from .report import ReconstructionResult, ReportTally
from .stages import TORSO, Detections, FrontEnd, joint_confidence, load_lifter, tie_midpoints
from .trajectory_refine import refine_in_windows

#: Frames per chunk of the stages that work frame by frame (triangulation, prior, report).
CHUNK_FRAMES = 1024


def _chunks(n: int, size: int = CHUNK_FRAMES) -> list[slice]:
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def _triangulate(rig: CameraRig, keypoints: FloatArray, fps: float, opts: ReconstructionOptions
                 ) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray, BoolArray]:
    """The front end (:class:`~.stages.FrontEnd`: swaps undone, triangulation, cameras following
    another person left out), chunk by chunk.

    Returns:
        ``(keypoints, points (F, 17, 3), inliers (C, F, 17), excluded (C, F), swapped (C, F, 17))``:
        the keypoints with swaps undone and excluded views NaN (a copy only where something changed).
    """
    n_c, n_f, n_j, _ = keypoints.shape
    points = np.empty((n_f, n_j, 3))
    inliers = np.empty((n_c, n_f, n_j), bool)
    excluded = np.zeros((n_c, n_f), bool)
    swapped = np.zeros((n_c, n_f, n_j), bool)
    front = FrontEnd(rig, fps, opts)
    kp = keypoints
    for part in _chunks(n_f):
        chunk = keypoints[:, part]
        out = front(chunk)
        points[part], inliers[:, part], excluded[:, part], swapped[:, part] = (out.points, out.inliers, out.excluded,
                                                                                out.swapped)
        if out.keypoints is not chunk:
            if kp is keypoints:
                kp = keypoints.copy()
            kp[:, part] = out.keypoints
    return kp, points, inliers, excluded, swapped


def _fill_missing(points: FloatArray, det: Detections, rig: CameraRig, bone_lengths: FloatArray,
                  prior: FactorizationPrior | None, fps: float, opts: ReconstructionOptions,
                  lifter: Lifter | None = None) -> tuple[FloatArray, BoolArray, BoolArray, BoolArray]:
    """Complete joints two cameras could not give: along single-camera rays, then by the lifting
    network (when given, in the cases ``opts.lifting_fill`` allows), then by the prior.

    Args:
        points: ``(F, 17, 3)`` metres, NaN where missing; det: the 2D.
        bone_lengths: ``(B,)`` the performer's, metres; prior: the factorization prior or None;
        lifter: the lifting network or None.
    Returns:
        ``(points, carried (F, 17), by_lifting (F, 17), by_prior (F, 17))``.
    """
    none = np.zeros(points.shape[:2], bool)
    if np.isfinite(points).all():
        return points, none, none, none
    root = H36M17.index("pelvis")
    anchors, _ = torso_anchors(points, fps, [root], options=opts.anchors)
    track = np.where(np.isfinite(points[:, root]), points[:, root], anchors[:, root])
    per_joint = bone_length_per_joint(bone_lengths, H36M17.bone_indices, H36M17.n_joints)
    points, carried = propagate_along_rays(points, H36M17.parents, H36M17.topological_order(), per_joint,
                                           rig.centers, rig.ray_directions(det.xy), det.usable, track,
                                           max_frames=round(opts.max_carry_s * fps), gate_m=opts.carry_gate_m)
    missing = np.flatnonzero(~np.isfinite(points).all(-1).all(-1))                          # frames to fill
    if missing.size == 0 or (lifter is None and prior is None):
        return points, carried, none, none
    # the torso's trajectory as the rig reconstructed it, carried across the gaps: both learned fills
    # are pulled towards it (not towards each other's guesses)
    anchors, sigma = torso_anchors(points, fps, TORSO, options=opts.anchors)
    by_lifting, by_prior = none.copy(), none.copy()
    if lifter is not None:
        lf = opts.lifting_fill
        conf = np.nan_to_num(det.keypoints[..., 2])
        weight = np.where(det.usable & (conf >= lf.min_confidence), conf, 0.0)               # (C, F, 17)
        wanted = fillable(np.isfinite(points).all(-1), weight > 0, lf).any(-1)                 # (F,)
        if wanted.any():
            # each camera lifted once, batched, in the frames wanted (and those their windows read)
            lifts, lifted = lift_cameras(lifter, det.xy, weight, fps, lf.min_view_joints, wanted, rig.rotations)
            rows = np.flatnonzero(wanted)
            filled, mask, rms = fill_with_lifting(points[rows], lifts[:, rows], lifted[:, rows],
                                                  weight[:, rows] > 0, conf[:, rows], rig, bone_lengths, lf,
                                                  rig.ray_directions(det.xy[:, rows]), xy=det.xy[:, rows],
                                                  anchors=anchors[rows], anchor_sigma=sigma[rows], return_rms=True)
            if prior is not None and lf.compare_placements:
                filled, mask, by_prior[rows] = _better_placements(filled, mask, rms, points[rows], rows, det, rig,
                                                                  bone_lengths, prior, opts.prior_fill, anchors, sigma)
            points[rows], by_lifting[rows] = filled, mask
            # frames the prior already placed here are not given to it again
            missing = np.flatnonzero(~np.isfinite(points).all(-1).all(-1) & ~by_prior.any(-1))
    if prior is not None and missing.size:
        # what neither interpolation nor the rays could give (joints no camera sees, bodies seen by
        # one camera far from any reconstructed frame): the canonical shape, only in the frames
        # that need it, a chunk at a time (each frame is filled on its own)
        f = opts.prior_fill
        for part in _chunks(missing.size):
            rows = missing[part]
            filled, mask = fill_with_prior(prior, points[rows], det.keypoints[:, rows], rig, min_known=f.min_known,
                                           min_confidence=f.min_confidence, min_view_joints=f.min_view_joints,
                                           bone_lengths=bone_lengths, anchors=anchors[rows],
                                           anchor_sigma=sigma[rows], max_view_fit_px=f.max_view_fit_px)
            points[rows], by_prior[rows] = filled, mask
    return points, carried, by_lifting, by_prior


def _better_placements(filled: FloatArray, by_lifting: BoolArray, lift_rms: FloatArray, before: FloatArray,
                       rows: IntArray, det: Detections, rig: CameraRig, bone_lengths: FloatArray,
                       prior: FactorizationPrior, f: PriorFillOptions, anchors: FloatArray, sigma: FloatArray
                       ) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Frames the lift placed (``lift_rms`` finite, ``(n,)`` pixels) placed by the prior too; where
    the prior's placement fits the cameras' 2D better (lower robust RMS, as the prior already
    chooses between its shape and its mirror) the prior's is kept.

    Args:
        filled: ``(n, 17, 3)`` the lift's fill of frames ``rows``; by_lifting: ``(n, 17)``;
        before: ``(n, 17, 3)`` those frames before it; the rest as :func:`_fill_missing`.
    Returns:
        ``(filled, by_lifting, by_prior (n, 17))``: the frames the prior places better filled by it.
    """
    by_prior = np.zeros_like(by_lifting)
    placed = np.flatnonzero(np.isfinite(lift_rms))
    if placed.size == 0:
        return filled, by_lifting, by_prior
    at = rows[placed]
    prior_fill, prior_mask, prior_rms = fill_with_prior(
        prior, before[placed], det.keypoints[:, at], rig, min_known=f.min_known, min_confidence=f.min_confidence,
        min_view_joints=f.min_view_joints, bone_lengths=bone_lengths, anchors=anchors[at], anchor_sigma=sigma[at],
        max_view_fit_px=f.max_view_fit_px, return_rms=True)
    better = np.nan_to_num(prior_rms, nan=np.inf) < lift_rms[placed]
    filled, by_lifting = filled.copy(), by_lifting.copy()
    worse = placed[better]
    filled[worse], by_lifting[worse], by_prior[worse] = prior_fill[better], False, prior_mask[better]
    return filled, by_lifting, by_prior


def smoothing_description(opts: ReconstructionOptions, fps: float) -> dict[str, Any]:
    """The report's ``smoothing`` for the offline path."""
    out: dict[str, Any] = {"filter": "butterworth zero-phase", "cutoff_hz": min(opts.cutoff_hz, 0.4 * fps), "order": 4,
                           "gaps_filled_up_to_frames": round(opts.max_gap_s * fps)}
    if opts.refine:
        out["refined"] = asdict(opts.refine_weights)
    return out


def view_bias(rig: CameraRig, keypoints: FloatArray, points: FloatArray, min_confidence: float,
              options: ViewBiasOptions) -> FloatArray:
    """Each camera's steady offset of each joint's detections from a reconstruction, pixels.

    A detector that puts a joint a little off in every frame of a view (a hip that sits high)
    biases every frame's triangulation alike, which smoothing cannot remove. Across a take the
    skeleton's rigid bones and smooth motion leave part of that offset in the view's residuals;
    their median over the take (residuals within ``options.gate_px`` only, so outliers do not
    count) is the estimate, shrunk by ``options.floor_px`` (what noise alone gives over a take),
    and none where fewer than ``options.min_frames`` frames count.

    Args:
        rig: the cameras; keypoints: ``(C, F, J, 3)`` the detections the points were made from;
        points: ``(F, J, 3)`` the reconstruction, metres; min_confidence: detections below it
        do not count; options: :class:`~.options.ViewBiasOptions`.
    Returns:
        ``(C, J, 2)`` pixels (0 where not estimated), to subtract from the detections.
    """
    n_c, _, n_j, _ = keypoints.shape
    median = np.zeros((n_c, n_j, 2))
    count = np.zeros((n_c, n_j), np.int64)
    for c, cam in enumerate(rig.cameras):               # one camera at a time: memory of one view
        residual = keypoints[c, ..., :2] - cam.project(points)                              # (F, J, 2)
        ok = ((np.linalg.norm(residual, axis=-1) <= options.gate_px)
              & (np.nan_to_num(keypoints[c, ..., 2]) >= min_confidence))
        count[c] = ok.sum(axis=0)
        seen = count[c] > 0
        if seen.any():
            median[c, seen] = np.nanmedian(np.where(ok[..., None], residual, np.nan)[:, seen], axis=0)
    size = np.linalg.norm(median, axis=-1, keepdims=True)
    shrink = np.maximum(size - options.floor_px, 0.0) / np.maximum(size, 1e-12)
    return np.where((count >= options.min_frames)[..., None], median * shrink, 0.0)


def reconstruct_offline(rig: CameraRig, keypoints: FloatArray, fps: float, opts: ReconstructionOptions,
                        prior: FactorizationPrior | None, input_layout: str) -> ReconstructionResult:
    """Reconstruct a whole take with look-ahead: zero-phase smoothing, gap filling, carrying along
    rays both ways, the prior, and the refinement in windows; then, where the cameras' detections
    are found steadily off (:func:`view_bias`; RMS at least ``opts.view_bias.min_rms_px``), the
    take again from detections without that offset.

    Args:
        rig: the cameras, in the keypoints' order.
        keypoints: ``(C, F, 17, 3)`` H36M17 keypoints, pixels and confidence (not modified).
        fps: frame rate, Hz; opts: the settings; prior: the factorization prior or None.
        input_layout: the name of the keypoints' own layout (for the report).
    Returns:
        :class:`~.report.ReconstructionResult`.
    """
    lifter = load_lifter(opts.lifting) if opts.lifting else None
    result, used = _reconstruct_once(rig, keypoints, fps, opts, prior, input_layout, lifter)
    if not opts.view_bias.enabled:
        return result
    bias = view_bias(rig, used, result.points.points3d, opts.triangulation.min_confidence, opts.view_bias)
    if np.sqrt(np.mean(np.sum(bias**2, axis=-1))) < opts.view_bias.min_rms_px:
        return result
    unbiased = keypoints.copy()
    unbiased[..., :2] -= bias[:, None]
    return _reconstruct_once(rig, unbiased, fps, opts, prior, input_layout, lifter)[0]


def _reconstruct_once(rig: CameraRig, keypoints: FloatArray, fps: float, opts: ReconstructionOptions,
                      prior: FactorizationPrior | None, input_layout: str, lifter: Lifter | None = None,
                      ) -> tuple[ReconstructionResult, FloatArray]:
    """One pass of :func:`reconstruct_offline`; also the keypoints it read (swaps undone, views
    following another person NaN)."""
    bones = H36M17.bone_indices
    kp, raw, inliers, excluded, swapped = _triangulate(rig, keypoints, fps, opts)
    n_views = inliers.sum(axis=0)
    reference = reference_bone_lengths(raw, bones, n_views >= 3)
    dropped = implausible_joints(raw, bones, n_views == 2, reference)
    raw[dropped] = np.nan
    triangulated = np.isfinite(raw).all(axis=-1)
    det = Detections.of(rig, kp, inliers, triangulated, opts.triangulation.min_confidence)
    max_gap = round(opts.max_gap_s * fps)
    # A take filmed slower than 2.5 x the cutoff (e.g. 6 Hz at a 12 fps webcam) keeps 80 % of its
    # Nyquist band: the filter cannot cut above it.
    cutoff_hz = min(opts.cutoff_hz, 0.4 * fps)
    points, interpolated = butterworth_zero_phase(raw, fps, cutoff_hz, max_gap_frames=max_gap, return_mask=True)
    completed, carried, by_lifting, by_prior = _fill_missing(points, det, rig, reference, prior, fps, opts, lifter)
    added = carried | by_lifting | by_prior
    if added.any():  # smooth what was added together with what it joins
        smoothed = butterworth_zero_phase(completed, fps, cutoff_hz, max_gap_frames=max_gap)
        points = np.where(added[..., None], smoothed, points)
    if opts.refine:
        points = refine_in_windows(points, np.isfinite(points).all(-1), fps, bones, reference, rig.rotations,
                                   rig.translations, rig.focal_x, det.xy, det.refine_views, opts.refine_weights,
                                   opts.refine_window)
    if opts.tie_midpoints:
        points = tie_midpoints(points)
    confidence = np.empty(points.shape[:2])
    tally = ReportTally(rig)
    for part in _chunks(points.shape[0]):
        confidence[part] = joint_confidence(inliers[:, part], kp[:, part, :, 2], points[part],
                                            interpolated[part], carried[part], by_prior[part], by_lifting[part])
        tally.add(points[part], kp[:, part], inliers[:, part], triangulated[part], interpolated[part],
                  carried[part], by_prior[part], dropped[part], excluded[:, part], swapped[:, part],
                  by_lifting[part])
    report = tally.report(fps, input_layout, False, smoothing_description(opts, fps), opts)
    return ReconstructionResult(Points3D(points, confidence, list(H36M17.joints), fps), report), kp
