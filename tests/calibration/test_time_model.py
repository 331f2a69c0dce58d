"""The calibration's time model: a corner's position at a camera's sub-frame exposure time."""

from __future__ import annotations

import numpy as np

from posestudio.calibration.time_offsets import exposure_weights, motion_stencils


def _positions(times: np.ndarray) -> np.ndarray:
    """A board point under constant acceleration: ``(N, 3)`` metres at ``times`` ``(N,)`` frames."""
    p0, v, a = np.array([0.2, -0.1, 1.0]), np.array([0.03, 0.01, -0.02]), np.array([0.004, -0.006, 0.002])
    return p0 + times[:, None] * v + 0.5 * times[:, None] ** 2 * a


def test_exposure_position_is_exact_under_constant_acceleration_with_uneven_gaps():
    frames = [10, 11, 13, 14, 15, 17]  # gaps of 1 and 2 frames; runs end at 10 and 17
    st = motion_stencils(frames)
    x = _positions(np.array(frames, float))
    inner = [1, 2, 3, 4]  # poses with both neighbours
    for offset in (-0.5, -0.2, 0.3, 0.5):
        w, dw = exposure_weights(st.weights[inner], np.full(len(inner), offset))
        stack = np.stack([x[st.prev[inner]], x[inner], x[st.next[inner]]], axis=1)
        got = np.einsum("nk,nkd->nd", w, stack)
        want = _positions(np.array(frames, float)[inner] + offset)
        np.testing.assert_allclose(got, want, atol=1e-12)
        # the derivative along the offset is the velocity at the exposure time
        velocity = np.einsum("nk,nkd->nd", dw, stack)
        t = np.array(frames, float)[inner] + offset
        np.testing.assert_allclose(velocity, np.array([0.03, 0.01, -0.02]) + t[:, None] * [0.004, -0.006, 0.002],
                                   atol=1e-12)


def test_a_linear_model_would_miss_the_curvature_that_the_quadratic_one_keeps():
    # Half a frame off with an acceleration of 7.5 mm/frame^2: the velocity alone is off by
    # a/8 = 0.9 mm, a fifth of a pixel at 3 m with a 600 px focal length, in every view.
    frames = [0, 1, 2]
    st = motion_stencils(frames)
    x = _positions(np.array(frames, float))
    w, _ = exposure_weights(st.weights[[1]], np.array([0.5]))
    quadratic = w[0] @ x
    linear = x[1] + 0.5 * (x[2] - x[0]) / 2
    truth = _positions(np.array([1.5]))[0]
    assert np.linalg.norm(quadratic - truth) < 1e-12
    assert np.linalg.norm(linear - truth) > 4e-4


def test_one_sided_and_isolated_poses():
    st = motion_stencils([3, 7, 8])  # 3 has no neighbour within two frames; 7 and 8 have one each
    np.testing.assert_array_equal(st.weights[0], 0.0)
    np.testing.assert_allclose(st.weights[1, 0], [0.0, -1.0, 1.0])
    np.testing.assert_allclose(st.weights[2, 0], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(st.weights[:, 1], 0.0)  # no curvature from one neighbour
