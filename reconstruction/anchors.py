"""Where the torso probably is in frames the rig could not triangulate: temporal anchors.

A body seen by a single camera is well placed across the image but poorly in depth (its size in
the image is a weak depth cue). The torso moves smoothly, so its triangulated positions in
neighbouring frames say where it is: :func:`torso_anchors` interpolates across a gap (offline),
or extrapolates at constant velocity from the last frames seen (both ends offline; only from the
past live), and gives each anchor an uncertainty that grows with the time since a joint was last
(or until it is next) triangulated. The model-based fit
(:func:`posestudio.reconstruction.view_fit.fit_pose_to_views`) uses the anchors as soft 3D points.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray

from .filters import gap_bounds
from .options import AnchorOptions


def torso_anchors(points: FloatArray, fps: float, joints: list[int], *, causal: bool = False,
                  options: AnchorOptions | None = None) -> tuple[FloatArray, FloatArray]:
    """Soft positions of slowly moving joints where they are missing.

    Args:
        points: ``(F, J, 3)`` metres, NaN where not reconstructed.
        fps: frame rate, Hz.
        joints: indices of the joints to anchor (e.g. pelvis, hips, spine, thorax).
        causal: only use earlier frames (live): extrapolate forward from the last sighting.
        options: :class:`~.options.AnchorOptions` (velocity frames, uncertainty at and away from a
            sighting, the longest gap anchored); the velocity is the mean over
            ``velocity_frames`` frames before (after) the last (next) sighting, when both ends were
            reconstructed, else zero.
    Returns:
        ``(anchors (F, J, 3), sigma (F, J))``: metres; NaN where there is no anchor (including
        every joint not in ``joints`` and every frame where the joint was reconstructed).
    """
    opts = options or AnchorOptions()
    p = np.asarray(points, dtype=np.float64)
    f, n_j, _ = p.shape
    anchors = np.full(p.shape, np.nan)
    sigma = np.full((f, n_j), np.nan)
    if f == 0 or not joints:
        return anchors, sigma
    sub = p[:, joints]                                                                     # (F, K, 3)
    ok = np.isfinite(sub).all(-1)
    prev, nxt = gap_bounds(ok)
    col = np.arange(len(joints))[None, :].repeat(f, 0)
    k = opts.velocity_frames

    def velocity(at: NDArray[np.intp], back: bool) -> FloatArray:
        other = at - k if back else at + k
        inside = (at >= 0) & (at < f) & (other >= 0) & (other < f)
        a = sub[np.clip(at, 0, f - 1), col]
        b = sub[np.clip(other, 0, f - 1), col]
        v = (a - b) / k if back else (b - a) / k                                            # per frame
        good = inside & np.isfinite(v).all(-1)
        return np.where(good[..., None], v, 0.0)

    t = np.arange(f)[:, None]
    has_prev, has_next = prev >= 0, nxt < f
    pv = sub[np.clip(prev, 0, f - 1), col]
    nv = sub[np.clip(nxt, 0, f - 1), col]
    from_prev = pv + velocity(prev, True) * (t - prev)[..., None]
    from_next = nv - velocity(nxt, False) * (nxt - t)[..., None]
    if causal:
        est = np.where(has_prev[..., None], from_prev, np.nan)
        dist = np.where(has_prev, t - prev, np.inf)
    else:
        w = np.where(has_prev & has_next, (t - prev) / np.maximum(nxt - prev, 1), 0.0)[..., None]
        between = (1.0 - w) * pv + w * nv
        est = np.where((has_prev & has_next)[..., None], between,
                       np.where(has_prev[..., None], from_prev, np.where(has_next[..., None], from_next, np.nan)))
        dist = np.minimum(np.where(has_prev, t - prev, np.inf), np.where(has_next, nxt - t, np.inf))
    dist_s = dist / fps
    use = ~ok & np.isfinite(dist_s) & (dist_s <= opts.max_gap_s)
    anchors[:, joints] = np.where(use[..., None], est, np.nan)
    sigma[:, joints] = np.where(use, opts.base_sigma_m + opts.growth_m_per_s * dist_s, np.nan)
    return anchors, sigma
