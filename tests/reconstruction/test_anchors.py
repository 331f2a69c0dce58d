"""Torso anchors: where a missing joint probably is, from its track before and after."""

from __future__ import annotations

import numpy as np

from posestudio.reconstruction.anchors import torso_anchors
from posestudio.reconstruction.options import AnchorOptions


def _line(n: int = 60, fps: float = 30.0) -> np.ndarray:
    t = np.arange(n) / fps
    return np.stack([1.2 * t, 0.3 * t, np.full_like(t, 0.95)], -1)[:, None, :].repeat(2, axis=1)   # (F, 2, 3)


def test_interpolates_across_gaps_and_extrapolates_at_the_ends() -> None:
    truth = _line()
    pts = truth.copy()
    pts[20:30, 0] = np.nan          # interior gap
    pts[:5, 0] = np.nan             # start
    pts[52:, 0] = np.nan            # end
    anchors, sigma = torso_anchors(pts, 30.0, [0])
    missing = ~np.isfinite(pts[:, 0]).all(-1)
    np.testing.assert_allclose(anchors[missing, 0], truth[missing, 0], atol=1e-9)
    assert np.isnan(anchors[~missing, 0]).all() and np.isnan(anchors[:, 1]).all()   # only missing, only asked
    assert sigma[25, 0] > sigma[21, 0] > 0.03 - 1e-12                          # grows away from a sighting
    assert sigma[59, 0] > sigma[53, 0]


def test_causal_anchors_ignore_the_future() -> None:
    pts = _line()
    pts[40:, 0] = np.nan
    a1, s1 = torso_anchors(pts, 30.0, [0], causal=True)
    changed = pts.copy()
    changed[50:, 0] = [9.0, 9.0, 9.0]                                            # a later sighting
    a2, _ = torso_anchors(changed, 30.0, [0], causal=True)
    np.testing.assert_array_equal(a1[40:50], a2[40:50])
    np.testing.assert_allclose(a1[40:50, 0], _line()[40:50, 0], atol=1e-9)


def test_no_anchor_far_from_any_sighting() -> None:
    pts = _line(200)
    pts[:150, 0] = np.nan
    anchors, _ = torso_anchors(pts, 30.0, [0], options=AnchorOptions(max_gap_s=1.0))
    assert np.isnan(anchors[:119, 0]).all() and np.isfinite(anchors[120:150, 0]).all()
