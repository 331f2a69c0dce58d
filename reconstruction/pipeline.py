"""Offline and live reconstruction of 3D skeletons from multi-view 2D keypoints.

``reconstruct(rig, keypoints)``: cameras matched by name, detector layout mapped to the 17-joint
Human3.6M body, robust triangulation, then smoothing: a zero-phase Butterworth with short-gap
filling offline, or a causal One Euro filter live. ``run_reconstruction`` does the files.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.keypoints_file import Keypoints2D, Points3D, read_keypoints2d, write_points3d
from posestudio.core.pose_metrics import reprojection_errors
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_cv, bone_length_per_joint
from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT, FactorizationPrior
from posestudio.models.keypoints import H36M17, keypoints_for_rig

from .anchors import torso_anchors
from .filters import butterworth_zero_phase, one_euro
from .identity import exclude_other_people
from .plausibility import implausible_joints, reference_bone_lengths, running_bone_lengths
from .prior_fill import fill_with_prior
from .ray_carry import propagate_along_rays
from .trajectory_refine import RefineWeights, refine_causal, refine_trajectories
from .triangulation import TriangulationOptions, triangulate_robust


@dataclass
class ReconstructionOptions:
    """Settings.

    Attributes:
        live: causal path (One Euro filter, no look-ahead) instead of the offline smoother.
        triangulation: robust triangulation settings.
        max_gap_s: offline, gaps up to this long (seconds) are filled by interpolation.
        cutoff_hz: offline Butterworth cut-off.
        one_euro_min_cutoff, one_euro_beta: live filter settings (Hz, Hz per m/s).
        max_carry_s: joints seen by one camera are carried along its rays at most this long
            (seconds) from the frames where they were reconstructed.
        refine: finish with a joint refinement of the trajectories against the cameras, the bone
            lengths and smoothness (:mod:`~posestudio.reconstruction.trajectory_refine`): the
            whole take offline, each frame as it arrives live (else the One Euro filter live).
        refine_weights: its term weights.
        prior: checkpoint of the factorization network that fills joints the cameras cannot
            triangulate (None: no prior).
    """

    live: bool = False
    triangulation: TriangulationOptions = field(default_factory=TriangulationOptions)
    max_gap_s: float = 0.5
    cutoff_hz: float = 6.0
    # Tuned on projected motion capture (benchmarks/reconstruction.py): at beta = 1 the filter lags
    # a running body by tens of millimetres; beta = 20 keeps the lag to about 2 mm over the raw
    # error while still smoothing slow, jittery joints.
    one_euro_min_cutoff: float = 2.0
    one_euro_beta: float = 20.0
    max_carry_s: float = 1.0
    refine: bool = True
    refine_weights: RefineWeights = field(default_factory=RefineWeights)
    prior: str | Path | None = DEFAULT_CHECKPOINT


#: Joints that move smoothly enough to be carried across a gap as anchors for the prior's fit.
TORSO = [H36M17.index(j) for j in ("pelvis", "r_hip", "l_hip", "spine", "thorax")]

#: Confidence given to joints filled by the factorization prior (not observed by two cameras).
PRIOR_CONFIDENCE = 0.2
#: Confidence of joints carried from a neighbouring frame along a single camera's ray.
CARRIED_CONFIDENCE = 0.25
#: Confidence of joints interpolated across a short gap.
GAP_FILL_CONFIDENCE = 0.3


_PRIORS: dict[str, FactorizationPrior] = {}


def load_prior(path: str | Path) -> FactorizationPrior:
    """The :class:`~posestudio.models.factorization.prior.FactorizationPrior` of a checkpoint, loaded
    once per process; a missing or foreign file raises
    :class:`~posestudio.models.checkpoints.CheckpointError` naming it."""
    key = str(path)
    if key not in _PRIORS:
        _PRIORS[key] = FactorizationPrior.load(path)
    return _PRIORS[key]


@dataclass
class ReconstructionResult:
    """3D joints and the report that describes them."""

    points: Points3D
    report: dict


def reconstruct(rig: CameraRig, kp: Keypoints2D, options: ReconstructionOptions | None = None,
                source: str = "<keypoints>") -> ReconstructionResult:
    """Reconstruct ``(frames, 17, 3)`` joints in metres from multi-view 2D keypoints."""
    opts = options or ReconstructionOptions()
    sub, kp17, layout = keypoints_for_rig(rig, kp, source)
    tri = triangulate_robust(sub, kp17, opts.triangulation)
    kp17, excluded = exclude_other_people(sub, kp17, tri.points, kp.fps, opts.triangulation)
    if excluded.any():  # cameras that followed someone else, left out where they did
        tri = triangulate_robust(sub, kp17, opts.triangulation)
    raw = tri.points.copy()  # (F, 17, 3)
    trusted = tri.n_views >= 3
    # the performer's bone lengths: over the whole take offline, from the frames so far live
    if opts.live:
        reference = running_bone_lengths(raw, H36M17.bone_indices, trusted)
    else:
        reference = reference_bone_lengths(raw, H36M17.bone_indices, trusted)
    dropped = implausible_joints(raw, H36M17.bone_indices, (tri.n_views == 2), reference)
    raw[dropped] = np.nan
    triangulated = np.isfinite(raw).all(axis=-1)
    detections = _Detections.of(sub, kp17, tri.inliers, triangulated, opts.triangulation.min_confidence)
    prior = load_prior(opts.prior) if opts.prior else None
    if opts.live:
        stages = _live(raw, detections, sub, reference, prior, kp.fps, opts)
    else:
        stages = _offline(raw, detections, sub, reference, prior, kp.fps, opts)
    points = stages.points
    confidence = _view_confidence(tri.inliers, kp17[..., 2])
    for made, value in ((stages.interpolated, GAP_FILL_CONFIDENCE), (stages.carried, CARRIED_CONFIDENCE),
                        (stages.by_prior, PRIOR_CONFIDENCE)):
        confidence = np.where(made, value, confidence)
    confidence = np.where(np.isfinite(points).all(axis=-1), confidence, 0.0)
    report = _report(points, kp17, sub, tri.inliers, triangulated, stages, opts, layout.name, kp.fps)
    report["two_view_joints_dropped_by_bone_lengths"] = int(dropped.sum())
    report["frames_excluded_per_camera_as_another_person"] = dict(zip(sub.names, excluded.sum(axis=1).tolist()))
    return ReconstructionResult(Points3D(points, confidence, list(H36M17.joints), kp.fps), report)


@dataclass
class _Detections:
    """The 2D every stage after triangulation works from, lenses undone once.

    Attributes:
        keypoints: ``(C, F, 17, 3)`` pixels and confidence (the prior reads these).
        xy: ``(C, F, 17, 2)`` normalised image coordinates; usable: ``(C, F, 17)`` confident ones.
        inliers: ``(C, F, 17)`` views triangulation used; triangulated: ``(F, 17)``.
    """

    keypoints: FloatArray
    xy: FloatArray
    usable: BoolArray
    inliers: BoolArray
    triangulated: BoolArray

    @classmethod
    def of(cls, rig: CameraRig, keypoints: FloatArray, inliers: BoolArray, triangulated: BoolArray,
           min_confidence: float) -> "_Detections":
        xy = rig.undistort(keypoints[..., :2])
        usable = np.isfinite(xy).all(-1) & (np.nan_to_num(keypoints[..., 2]) >= min_confidence)
        return cls(keypoints, xy, usable, inliers, triangulated)

    @property
    def refine_views(self) -> BoolArray:
        """``(C, F, 17)`` views the refinement fits: triangulated joints keep to the views they were
        made from; the rest use every confident detection (the robust loss sorts them out)."""
        return np.where(self.triangulated[None], self.inliers, self.usable)


@dataclass
class _Stages:
    """What the pipeline made, and how: ``points`` ``(F, 17, 3)``; masks ``(F, 17)``."""

    points: FloatArray
    interpolated: BoolArray
    carried: BoolArray
    by_prior: BoolArray
    smoothing: dict


def _view_confidence(inliers: BoolArray, detector_confidence: FloatArray) -> FloatArray:
    """``(F, 17)``: mean detector confidence of the inlier views, scaled down below three views."""
    conf_sum = np.where(inliers, np.nan_to_num(detector_confidence), 0.0).sum(axis=0)
    n_views = inliers.sum(axis=0)
    confidence = np.divide(conf_sum, n_views, out=np.zeros_like(conf_sum), where=n_views > 0)
    return confidence * np.clip((n_views - 1) / 2.0, 0.0, 1.0)


def _live(raw: FloatArray, detections: _Detections, rig: CameraRig, reference: FloatArray, prior, fps: float,
          opts: ReconstructionOptions) -> _Stages:
    """Causal path: every step per frame or from earlier frames only; then each frame refined as it
    arrives against the cameras, the bone lengths so far and the motion so far (or, without
    refinement, the One Euro filter)."""
    raw, carried, by_prior = _fill_missing(raw, detections, rig, reference, prior, fps, opts, causal=True)
    if opts.refine:
        points = refine_causal(raw, fps, H36M17.bone_indices, reference, rig.rotations, rig.translations,
                               rig.focal_x, detections.xy, detections.refine_views, opts.refine_weights)
        smoothing = {"filter": "causal refinement (each frame with the 4 before it; no look-ahead)",
                     "refined": asdict(opts.refine_weights)}
    else:
        points = one_euro(raw, fps, min_cutoff=opts.one_euro_min_cutoff, beta=opts.one_euro_beta)
        smoothing = {"filter": "one-euro (causal)", "min_cutoff_hz": opts.one_euro_min_cutoff,
                     "beta": opts.one_euro_beta}
    return _Stages(points, np.zeros_like(carried), carried, by_prior, smoothing)


def _offline(raw: FloatArray, detections: _Detections, rig: CameraRig, reference: FloatArray, prior, fps: float,
             opts: ReconstructionOptions) -> _Stages:
    """Whole-take path: interpolation and zero-phase smoothing, filling, then the refinement."""
    max_gap = int(round(opts.max_gap_s * fps))
    points, interpolated = butterworth_zero_phase(raw, fps, opts.cutoff_hz, max_gap_frames=max_gap, return_mask=True)
    smoothing = {"filter": "butterworth zero-phase", "cutoff_hz": opts.cutoff_hz, "order": 4,
                 "gaps_filled_up_to_frames": max_gap}
    completed, carried, by_prior = _fill_missing(points, detections, rig, reference, prior, fps, opts, causal=False)
    added = carried | by_prior
    if added.any():  # smooth what was added together with what it joins
        smoothed = butterworth_zero_phase(completed, fps, opts.cutoff_hz, max_gap_frames=max_gap)
        points = np.where(added[..., None], smoothed, points)
    if opts.refine:
        points = refine_trajectories(points, np.isfinite(points).all(-1), fps, H36M17.bone_indices, reference,
                                     rig.rotations, rig.translations, rig.focal_x, detections.xy,
                                     detections.refine_views, opts.refine_weights)
        smoothing["refined"] = asdict(opts.refine_weights)
    return _Stages(points, interpolated, carried, by_prior, smoothing)


def _report(points: FloatArray, kp17: FloatArray, rig: CameraRig, inliers: BoolArray, triangulated: BoolArray,
            stages: _Stages, opts: ReconstructionOptions, input_layout: str, fps: float) -> dict:
    """The ``report.json`` contents (see docs/reconstruction.md)."""
    reproj_all = reprojection_errors(points, kp17[..., :2], rig)  # (C, F, 17), every detection
    reproj = np.where(inliers, reproj_all, np.nan)  # the views the points were made from
    ok = np.isfinite(points).all(axis=-1)
    return {
        "format": "posestudio-reconstruction-report", "format_version": 1,
        "frames": int(points.shape[0]), "fps": fps, "cameras": rig.names,
        "input_layout": input_layout, "output_layout": H36M17.name, "mode": "live" if opts.live else "offline",
        "reprojection_rms_px": _rms(reproj), "reprojection_rms_px_all_detections": _rms(reproj_all),
        "reprojection_rms_px_per_camera": {name: _rms(reproj[c]) for c, name in enumerate(rig.names)},
        "reprojection_rms_px_per_joint": {j: _rms(reproj[:, :, k]) for k, j in enumerate(H36M17.joints)},
        "reprojection_rms_px_per_camera_joint": {name: {j: _rms(reproj[c, :, k]) for k, j in enumerate(H36M17.joints)}
                                                 for c, name in enumerate(rig.names)},
        "bone_length_cv": float(bone_length_cv(points, H36M17.bone_indices)),
        "fraction_reconstructed": float(ok.mean()),
        "fraction_reconstructed_per_joint": dict(zip(H36M17.joints, ok.mean(axis=0).round(4).tolist())),
        "fraction_triangulated": float(triangulated.mean()),
        "fraction_gap_filled": float(stages.interpolated.mean()),
        "fraction_carried_along_rays": float(stages.carried.mean()),
        "fraction_filled_by_prior": float(stages.by_prior.mean()),
        "prior": str(opts.prior) if opts.prior else None,
        "outlier_views_rejected": int((np.isfinite(kp17[..., 0]) & ~inliers & triangulated[None]).sum()),
        "smoothing": stages.smoothing,
        "triangulation": {"min_confidence": opts.triangulation.min_confidence,
                          "threshold_px": opts.triangulation.threshold_px},
    }


def _fill_missing(points: FloatArray, detections: _Detections, rig: CameraRig, bone_lengths: FloatArray,
                  prior, fps: float, opts: ReconstructionOptions, causal: bool
                  ) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Complete joints two cameras could not give: along single-camera rays, then by the prior.

    Args:
        points: ``(F, 17, 3)`` metres, NaN where missing; detections: the 2D.
        rig: their cameras; bone_lengths: ``(B,)`` or causal ``(F, B)`` metres.
        prior: a :class:`~posestudio.models.factorization.prior.FactorizationPrior` or None.
        fps: frame rate; causal: use only earlier frames.
    Returns:
        ``(points, carried (F, 17), by_prior (F, 17))``.
    """
    none = np.zeros(points.shape[:2], bool)
    if np.isfinite(points).all():
        return points, none, none
    anchors, anchor_sigma = torso_anchors(points, fps, TORSO, causal=causal)
    per_joint = bone_length_per_joint(bone_lengths, H36M17.bone_indices, H36M17.n_joints)
    root = H36M17.index("pelvis")
    track = np.where(np.isfinite(points[:, root]), points[:, root], anchors[:, root])
    observed = points
    points, carried = propagate_along_rays(points, H36M17.parents, H36M17.topological_order(), per_joint,
                                           rig.centers, rig.ray_directions(detections.xy), detections.usable,
                                           track, causal=causal,
                                           max_frames=int(round(opts.max_carry_s * fps)))
    by_prior = none
    if prior is not None and not np.isfinite(points).all():
        # what neither interpolation nor the rays could give (joints no camera sees, bodies
        # seen by one camera far from any reconstructed frame): the canonical shape
        anchors, anchor_sigma = torso_anchors(points, fps, TORSO, causal=causal)
        if causal:
            # live: aligned to triangulated joints only (carried ones, extrapolated from the past,
            # mislead the alignment), no model-based placement of single-camera bodies
            filled, by_prior = fill_with_prior(prior, observed, detections.keypoints, rig, bone_lengths=bone_lengths, anchors=anchors,
                                          anchor_sigma=anchor_sigma, place_by_views=False)
            by_prior &= ~np.isfinite(points).all(-1)
            points = np.where(by_prior[..., None], filled, points)
        else:
            points, by_prior = fill_with_prior(prior, points, detections.keypoints, rig, bone_lengths=bone_lengths, anchors=anchors,
                                          anchor_sigma=anchor_sigma)
    return points, carried, by_prior


def _rms(a: FloatArray) -> float | None:
    a = np.asarray(a)
    a = a[np.isfinite(a)]
    return None if a.size == 0 else float(np.sqrt(np.mean(a**2)))


def run_reconstruction(calibration: str | Path, keypoints: str | Path, out_dir: str | Path,
                       options: ReconstructionOptions | None = None) -> ReconstructionResult:
    """Read the rig and keypoints, reconstruct, write ``OUT/points3d.npz`` and ``OUT/report.json``.

    Nothing is written unless everything succeeded; each file is written atomically.
    """
    rig = CameraRig.load(calibration)
    kp = read_keypoints2d(keypoints)
    result = reconstruct(rig, kp, options, str(keypoints))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_points3d(out / "points3d.npz", result.points)
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(result.report, indent=1, default=_json_default))
    tmp.replace(out / "report.json")
    return result


def _json_default(value):
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(type(value))
