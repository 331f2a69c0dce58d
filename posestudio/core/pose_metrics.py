"""3D pose accuracy and quality metrics with exact, documented definitions.

Conventions (see ``docs/architecture.md``):

* Points are arrays of shape ``(F, J, 3)`` (frames, joints, xyz); a single pose ``(J, 3)`` is
  accepted everywhere and treated as one frame. Inputs are in metres.
* Functions named after a metric (``mpjpe``, ``p_mpjpe`` ...) return results **in the input units**
  (metres for studio data). :func:`summarise` converts lengths to millimetres and names those keys
  ``*_mm``.
* **NaN handling.** A joint is *valid* in a frame when all three coordinates are finite in both the
  prediction and the ground truth. Invalid joints are excluded from every mean (never counted as
  zero error, never counted as failures) and are counted: :func:`valid_mask` gives the mask and
  :func:`summarise` reports ``n_evaluated`` / ``n_excluded``. A metric with nothing valid to average
  returns NaN.
* Means are pooled over all valid (frame, joint) pairs, not averaged per frame first (the two differ
  only when frames have different numbers of valid joints).
* ``per_joint=True`` returns a ``(J,)`` array of per-joint means instead of a scalar (NaN for a
  joint that is never valid).

Definitions (``p`` prediction, ``g`` ground truth, ``r`` root index, ``j`` valid joints of frame
``f``):

* MPJPE: ``mean ||(p_fj - p_fr) - (g_fj - g_fr)||`` (root-aligned per frame; the root itself has
  zero error and is counted, as in the Human3.6M protocol). A frame whose root is invalid is
  excluded entirely, because it cannot be aligned.
* absolute MPJPE: ``mean ||p_fj - g_fj||`` (no alignment; world-frame error of a calibrated rig).
* P-MPJPE: MPJPE after the per-frame similarity transform ``s R p + t`` (proper rotation,
  reflections excluded, isotropic scale) that minimises the squared error to ``g`` over the valid
  joints of the frame (Umeyama / orthogonal Procrustes).
* N-MPJPE: root-align both, then scale the prediction by the per-frame least-squares scale
  ``s = sum <p', g'> / sum ||p'||^2`` over the valid joints (Rhodin et al., 2018).
* PCK3D: share of valid joints whose root-aligned error is ``<= threshold`` (default 0.150 m, the
  MPI-INF-3DHP protocol); AUC: mean PCK3D over 31 thresholds ``0, 5, ..., 150 mm``. Both are
  fractions in ``[0, 1]`` (multiply by 100 for the percentages papers print). The 0 mm threshold
  only counts exact hits (in practice the root joint after root alignment), so even a near-perfect
  prediction scores at most about ``30/31 + (1/31) / J`` AUC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from .alignment import procrustes_align
from .arrays import BoolArray, FloatArray
from .skeleton import bone_length_cv

__all__ = [
    "valid_mask",
    "mpjpe",
    "mpjpe_absolute",
    "p_mpjpe",
    "n_mpjpe",
    "pck3d",
    "auc_pck3d",
    "reprojection_errors",
    "reprojection_error",
    "coverage",
    "summarise",
    "AUC_THRESHOLDS",
]

#: Thresholds of :func:`auc_pck3d`, metres: 0 to 150 mm in 31 steps of 5 mm.
AUC_THRESHOLDS: FloatArray = np.linspace(0.0, 0.150, 31)


class _Projector(Protocol):
    def project(self, points: FloatArray) -> FloatArray: ...


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _as_points(points: ArrayLike, name: str = "points") -> FloatArray:
    """``(F, J, 3)`` float64 view of ``points``; ``(J, 3)`` becomes one frame."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (frames, joints, 3) or (joints, 3), "
                         f"got {arr.shape}")
    return arr


def _pair(pred: ArrayLike, gt: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = _as_points(pred, "pred")
    g = _as_points(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _finite_joints(points: FloatArray) -> BoolArray:
    """``(F, J)``: all three coordinates finite."""
    return np.isfinite(points).all(axis=-1)


def valid_mask(pred: ArrayLike, gt: ArrayLike, root: int | None = None) -> BoolArray:
    """Which joints a metric evaluates.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        root: if given, a frame whose root joint is invalid is marked invalid entirely (this is the
            mask used by root-aligned metrics: MPJPE, N-MPJPE, PCK3D, AUC).
    Returns:
        ``(F, J)`` bool, True where all coordinates of the joint are finite in both inputs.
    """
    p, g = _pair(pred, gt)
    valid = _finite_joints(p) & _finite_joints(g)
    if root is not None:
        valid = valid & valid[:, root : root + 1]
    return valid


def _reduce(err: FloatArray, valid: BoolArray, per_joint: bool) -> float | FloatArray:
    """Pooled mean of ``err`` (F, J) over ``valid``; per joint when asked. NaN if nothing valid."""
    e = np.where(valid, err, 0.0)
    if per_joint:
        n = valid.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, e.sum(axis=0) / np.maximum(n, 1), np.nan)
    n = int(valid.sum())
    return float(e.sum() / n) if n else float("nan")


def _root_aligned(p: FloatArray, g: FloatArray, root: int) -> tuple[FloatArray, FloatArray]:
    return p - p[:, root : root + 1], g - g[:, root : root + 1]


def _joint_errors(p: FloatArray, g: FloatArray) -> FloatArray:
    """``(F, J)`` Euclidean distances (NaN propagates)."""
    return np.linalg.norm(p - g, axis=-1)


def _aligned_errors(pred: ArrayLike, gt: ArrayLike, root: int | None) -> tuple[FloatArray, BoolArray]:
    """``(F, J)`` joint errors after root alignment (none when ``root`` is None) and the valid mask."""
    p, g = _pair(pred, gt)
    valid = valid_mask(p, g, root)
    if root is not None:
        p, g = _root_aligned(p, g, root)
    return _joint_errors(p, g), valid


# --------------------------------------------------------------------------------------------
# position errors
# --------------------------------------------------------------------------------------------

def mpjpe(pred: ArrayLike, gt: ArrayLike, root: int | None = 0, *,
          per_joint: bool = False) -> float | FloatArray:
    """Mean per-joint position error after aligning the root joint per frame.

    ``mean over valid (f, j) of ||(pred[f, j] - pred[f, root]) - (gt[f, j] - gt[f, root])||``.
    The root joint (pelvis, index 0 by default) has zero error after alignment and is included in
    the mean. A joint that is NaN in either input is excluded; a frame whose root is NaN in either
    input is excluded entirely (see :func:`valid_mask`).

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points (metres, or any length unit).
        gt: same shape, ground truth in the same unit.
        root: root joint index; ``None`` skips the alignment (same as :func:`mpjpe_absolute`).
        per_joint: return ``(J,)`` per-joint means instead of a scalar.
    Returns:
        Error in the input unit (scalar, or ``(J,)``); NaN when no joint is valid.
    """
    err, valid = _aligned_errors(pred, gt, root)
    return _reduce(err, valid, per_joint)


def mpjpe_absolute(pred: ArrayLike, gt: ArrayLike, *,
                   per_joint: bool = False) -> float | FloatArray:
    """Mean per-joint position error without any alignment (world-frame error).

    A calibrated studio reconstructs in the world frame, so this is the error a user of the
    exported data sees. ``mean over valid (f, j) of ||pred[f, j] - gt[f, j]||``; joints NaN in
    either input are excluded.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        per_joint: return ``(J,)`` per-joint means.
    Returns:
        Error in the input unit; NaN when no joint is valid.
    """
    return mpjpe(pred, gt, root=None, per_joint=per_joint)


def p_mpjpe(pred: ArrayLike, gt: ArrayLike, *, per_joint: bool = False,
            allow_reflection: bool = False, min_joints: int = 3) -> float | FloatArray:
    """MPJPE after a per-frame similarity (Procrustes) alignment.

    Each frame of ``pred`` is mapped by the rotation, translation and isotropic scale that best fit
    it, in the least-squares sense over that frame's valid joints, onto ``gt`` (see
    :func:`procrustes_align`; reflections are excluded unless ``allow_reflection``). Joints NaN in
    either input are excluded from the fit and the mean; frames with fewer than ``min_joints``
    valid joints are excluded entirely.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        per_joint: return ``(J,)`` per-joint means.
        allow_reflection: permit mirror-image alignments.
        min_joints: minimum valid joints for a frame to count.
    Returns:
        Error in the input unit; zero for any similarity-transformed copy of ``gt``.
    """
    p, g = _pair(pred, gt)
    valid = valid_mask(p, g)
    aligned, ok = procrustes_align(p, g, valid, allow_reflection=allow_reflection,
                                   min_joints=min_joints)
    valid &= ok[:, None]
    return _reduce(_joint_errors(aligned, g), valid, per_joint)


def n_mpjpe(pred: ArrayLike, gt: ArrayLike, root: int = 0, *,
            per_joint: bool = False) -> float | FloatArray:
    """MPJPE after root alignment and a per-frame least-squares scale of the prediction.

    With root-aligned ``p' = pred - pred[root]`` and ``g' = gt - gt[root]`` the scale of frame ``f``
    is ``s_f = sum_j <p'_j, g'_j> / sum_j ||p'_j||^2`` over its valid joints, and the error is the
    mean of ``||s_f p'_j - g'_j||``. Joints NaN in either input are excluded; frames whose root is
    invalid, or whose root-aligned prediction is all zero, are excluded.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        root: root joint index.
        per_joint: return ``(J,)`` per-joint means.
    Returns:
        Error in the input unit; zero for a scaled (and translated) copy of ``gt``.
    """
    p, g = _pair(pred, gt)
    valid = valid_mask(p, g, root)
    pr, gr = _root_aligned(p, g, root)
    pr0 = np.where(valid[..., None], pr, 0.0)
    gr0 = np.where(valid[..., None], gr, 0.0)
    num = (pr0 * gr0).sum(axis=(1, 2))
    den = (pr0 * pr0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        s = num / den
    ok = den > 0
    valid &= ok[:, None]
    s = np.where(ok, s, np.nan)
    return _reduce(_joint_errors(s[:, None, None] * pr, gr), valid, per_joint)


# --------------------------------------------------------------------------------------------
# PCK / AUC
# --------------------------------------------------------------------------------------------

def pck3d(pred: ArrayLike, gt: ArrayLike, threshold: float = 0.150, root: int | None = 0, *,
          per_joint: bool = False) -> float | FloatArray:
    """Percentage of correct keypoints in 3D, as a fraction in ``[0, 1]``.

    Share of valid (frame, joint) pairs whose root-aligned error (as in :func:`mpjpe`) is
    ``<= threshold``. Joints NaN in either input are excluded, not counted as misses.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        threshold: distance in the input unit (default 0.150 m = 150 mm, MPI-INF-3DHP).
        root: root joint index; ``None`` uses absolute errors.
        per_joint: return ``(J,)`` per-joint fractions.
    Returns:
        Fraction of correct joints; NaN when no joint is valid.
    """
    err, valid = _aligned_errors(pred, gt, root)
    with np.errstate(invalid="ignore"):
        hit = (err <= threshold).astype(np.float64)
    return _reduce(hit, valid, per_joint)


def auc_pck3d(pred: ArrayLike, gt: ArrayLike, thresholds: ArrayLike | None = None,
              root: int | None = 0, *, per_joint: bool = False) -> float | FloatArray:
    """Area under the PCK3D curve: mean of :func:`pck3d` over thresholds.

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` predicted points.
        gt: same shape, ground truth.
        thresholds: distances in the input unit; default :data:`AUC_THRESHOLDS` (0 to 0.150 m,
            31 steps of 5 mm).
        root: root joint index; ``None`` uses absolute errors.
        per_joint: return ``(J,)`` per-joint values.
    The 0 threshold counts only exact hits, so a near-perfect but inexact prediction scores just
    under ``30/31`` (``errors <= threshold``, as in :func:`pck3d`).

    Returns:
        Mean PCK fraction in ``[0, 1]``; NaN when no joint is valid.
    """
    th = AUC_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64).ravel()
    err, valid = _aligned_errors(pred, gt, root)
    with np.errstate(invalid="ignore"):
        hit = (err[..., None] <= th).mean(axis=-1)                      # (F, J) share of thresholds
    return _reduce(hit, valid, per_joint)


# --------------------------------------------------------------------------------------------
# plausibility without ground truth
# --------------------------------------------------------------------------------------------

def coverage(points: ArrayLike, *, per_joint: bool = False) -> float | FloatArray:
    """Share of (frame, joint) entries whose three coordinates are all finite.

    Args:
        points: ``(F, J, 3)`` or ``(J, 3)`` points.
        per_joint: return ``(J,)`` per-joint shares over frames.
    Returns:
        Fraction in ``[0, 1]``.
    """
    fin = _finite_joints(_as_points(points))
    return fin.mean(axis=0) if per_joint else float(fin.mean())


# --------------------------------------------------------------------------------------------
# reprojection
# --------------------------------------------------------------------------------------------

def reprojection_errors(points3d: ArrayLike, keypoints2d: ArrayLike,
                        project: Callable[[FloatArray], FloatArray] | _Projector, *,
                        min_confidence: float = 0.0) -> FloatArray:
    """Pixel distance between projected 3D points and observed 2D keypoints.

    Args:
        points3d: ``(..., 3)`` world points, metres, usually ``(F, J, 3)``.
        keypoints2d: ``(C, ..., 2)`` pixels or ``(C, ..., 3)`` = x, y, confidence (the
            architecture's ``(cameras, frames, joints, 3)``); NaN where absent.
        project: a callable ``(..., 3) -> (C, ..., 2)`` or an object with such a ``.project``
            method (e.g. :class:`posestudio.core.rig.CameraRig`).
        min_confidence: with a confidence channel, observations with confidence
            ``<= min_confidence`` (or NaN) are treated as absent (so confidence 0 means absent).
    Returns:
        ``(C, ...)`` errors in pixels; NaN where the 3D point, its projection (e.g. behind the
        camera) or the observation is missing.
    """
    fn = project.project if hasattr(project, "project") else project
    pts = np.asarray(points3d, dtype=np.float64)
    kp = np.asarray(keypoints2d, dtype=np.float64)
    if kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints2d must end in 2 (x, y) or 3 (x, y, conf), got {kp.shape}")
    proj = np.asarray(fn(pts), dtype=np.float64)
    if proj.shape[1:] != pts.shape[:-1] + (2,):
        raise ValueError(f"project returned {proj.shape}, expected (C,) + {pts.shape[:-1] + (2,)}")
    if proj.shape[:-1] != kp.shape[:-1]:
        raise ValueError(f"projections {proj.shape[:-1]} and keypoints {kp.shape[:-1]} disagree "
                         "(expected keypoints2d of shape (C, ..., 2|3) matching points3d)")
    err = np.linalg.norm(proj - kp[..., :2], axis=-1)
    if kp.shape[-1] == 3:
        with np.errstate(invalid="ignore"):
            err = np.where(kp[..., 2] > min_confidence, err, np.nan)
    return err


def reprojection_error(points3d: ArrayLike, keypoints2d: ArrayLike,
                       project: Callable[[FloatArray], FloatArray] | _Projector, *,
                       per_camera: bool = False, per_joint: bool = False,
                       min_confidence: float = 0.0) -> float | FloatArray:
    """Mean reprojection error in pixels, NaN-aware.

    Computes :func:`reprojection_errors` (one distance per camera and observation) and averages
    over the observations that exist (NaN entries are excluded).

    Args:
        points3d: ``(F, J, 3)`` (or any ``(..., J, 3)``) world points, metres.
        keypoints2d: ``(C, F, J, 2|3)`` pixels (+ confidence).
        project: callable or rig-like object, see :func:`reprojection_errors`.
        per_camera: keep the camera axis.
        per_joint: keep the joint axis (the last one before the coordinates).
        min_confidence: see :func:`reprojection_errors`.
    Returns:
        Pixels: scalar, ``(C,)``, ``(J,)`` or ``(C, J)`` (both flags); NaN where nothing observed.
    """
    err = reprojection_errors(points3d, keypoints2d, project, min_confidence=min_confidence)
    ok = np.isfinite(err)
    e0 = np.where(ok, err, 0.0)
    c = err.shape[0]
    j = err.shape[-1] if err.ndim >= 2 else 1
    e0 = e0.reshape(c, -1, j)
    ok = ok.reshape(c, -1, j)
    axes: tuple[int, ...] = (1,)
    if not per_camera:
        axes = (0,) + axes
    if not per_joint:
        axes = axes + (2,)
    n = ok.sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, e0.sum(axis=axes) / np.maximum(n, 1), np.nan)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------

def summarise(pred: ArrayLike, gt: ArrayLike, bones: Sequence[tuple[int, int]] | Any | None = None,
              *, root: int = 0, pck_threshold: float = 0.150,
              keypoints2d: ArrayLike | None = None,
              project: Callable[[FloatArray], FloatArray] | _Projector | None = None,
              per_joint: bool = False) -> dict[str, Any]:
    """All metrics of a predicted sequence against ground truth, lengths in millimetres.

    Args:
        pred: ``(F, J, 3)`` predicted points, metres.
        gt: same shape, ground truth, metres.
        bones: ``(B, 2)`` joint pairs (or a layout with ``.bones``) for the bone-length CV.
        root: root (pelvis) joint index.
        pck_threshold: PCK3D threshold, metres.
        keypoints2d, project: if both given, also the mean reprojection error of ``pred`` (pixels).
        per_joint: add ``(J,)`` lists under ``per_joint`` (mm for lengths).
    Returns:
        dict with ``mpjpe_mm``, ``mpjpe_absolute_mm``, ``p_mpjpe_mm``, ``n_mpjpe_mm`` (mm);
        ``pck3d`` and ``auc_pck3d`` (fractions); ``pck_threshold_mm``; ``coverage`` (share of
        finite predicted joints); ``bone_length_cv`` and ``bone_length_cv_gt`` (if bones);
        ``reprojection_error_px`` (if 2D given); counts ``n_frames``, ``n_joints``,
        ``n_evaluated`` (valid joint-frames in both inputs) and ``n_excluded`` (the rest).
        Values are plain Python floats/ints (JSON-ready).
    """
    p, g = _pair(pred, gt)
    mm = 1000.0
    valid = valid_mask(p, g)
    out: dict[str, Any] = {
        "mpjpe_mm": mpjpe(p, g, root) * mm,
        "mpjpe_absolute_mm": mpjpe_absolute(p, g) * mm,
        "p_mpjpe_mm": p_mpjpe(p, g) * mm,
        "n_mpjpe_mm": n_mpjpe(p, g, root) * mm,
        "pck3d": pck3d(p, g, pck_threshold, root),
        "pck_threshold_mm": pck_threshold * mm,
        "auc_pck3d": auc_pck3d(p, g, root=root),
        "coverage": coverage(p),
        "n_frames": int(p.shape[0]),
        "n_joints": int(p.shape[1]),
        "n_evaluated": int(valid.sum()),
        "n_excluded": int(valid.size - valid.sum()),
    }
    if bones is not None:
        out["bone_length_cv"] = bone_length_cv(p, bones)
        out["bone_length_cv_gt"] = bone_length_cv(g, bones)
    if keypoints2d is not None and project is not None:
        out["reprojection_error_px"] = reprojection_error(p, keypoints2d, project)
    if per_joint:
        out["per_joint"] = {
            "mpjpe_mm": (mpjpe(p, g, root, per_joint=True) * mm).tolist(),
            "mpjpe_absolute_mm": (mpjpe_absolute(p, g, per_joint=True) * mm).tolist(),
            "p_mpjpe_mm": (p_mpjpe(p, g, per_joint=True) * mm).tolist(),
            "n_mpjpe_mm": (n_mpjpe(p, g, root, per_joint=True) * mm).tolist(),
            "pck3d": pck3d(p, g, pck_threshold, root, per_joint=True).tolist(),
            "coverage": coverage(p, per_joint=True).tolist(),
        }
    return out
