"""Left and right confused in one view: found against the other views and undone, live and offline;
and the detector errors that simulate it (swaps, correlated jitter, per-joint bias)."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.pose_metrics import mpjpe
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.options import SwapOptions
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.reconstruction.reconstructor import Reconstructor
from posestudio.reconstruction.swaps import H36M17_PAIRS, SwapCorrector, exchange, left_right_pairs
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import LIMBS, DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

LEGS = np.isin(H36M17_PAIRS[:, 0], [H36M17.index("l_knee"), H36M17.index("l_ankle")])
WHOLE_RUN = (1, slice(30, 41))          # camera 1, frames 30-40: the whole body
LEG_RUN = (2, slice(55, 63))            # camera 2, frames 55-62: the legs (knees and ankles)


@pytest.fixture(scope="module")
def rig():
    return make_studio_rig(4, (1920, 1080), seed=3)


@pytest.fixture(scope="module")
def scene(rig):
    """A walk with detector noise, outliers and occlusions; the same with a whole-body swap in one
    view and a leg swap in another, and the (C, F, P) pairs swapped."""
    body = walking_body(90, start=(-0.6, 0.1), speed_m_s=1.0, heading_deg=15)
    clean = simulate_detections(rig, body, DetectorErrors(noise_px=2.0, outlier_rate=0.05, occlusion_rate=0.04,
                                                          seed=4)).keypoints
    truth = np.zeros(clean.shape[:2] + (len(H36M17_PAIRS),), bool)
    truth[WHOLE_RUN] = True
    truth[LEG_RUN] = LEGS
    return body, clean, exchange(clean, truth), truth


def _take(rig, keypoints) -> Keypoints2D:
    return Keypoints2D(keypoints, rig.names, list(H36M17.joints), 30.0)


def _both_seen(keypoints) -> np.ndarray:
    """``(C, F, P)`` pairs whose two sides are detected."""
    seen = np.isfinite(keypoints[..., 0])
    return seen[..., H36M17_PAIRS[:, 0]] & seen[..., H36M17_PAIRS[:, 1]]


def test_left_right_pairs_by_name() -> None:
    assert [(H36M17.joints[a][2:], H36M17.joints[b][2:]) for a, b in H36M17_PAIRS] == \
        [(j, j) for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
    assert left_right_pairs(["nose", "left_eye", "right_eye", "left_hip", "right_hip"]).tolist() == [[1, 2], [3, 4]]


def test_whole_body_and_limb_swaps_are_found_and_undone(rig, scene) -> None:
    _, clean, swapped, truth = scene
    corrected, found = SwapCorrector(rig).correct(swapped)
    seen = _both_seen(swapped)
    # the swapped pairs whose two sides the view saw are found (a pair with a side occluded has
    # nothing to compare, unless the rest of the body is swapped too), and nothing else
    assert (found & truth & seen).sum() >= 0.95 * (truth & seen).sum()
    assert not (found & ~truth).any()
    assert found[WHOLE_RUN].all(-1).mean() > 0.9                         # the whole body, frame after frame
    assert found[LEG_RUN][:, LEGS].mean() > 0.4 and not found[LEG_RUN][:, ~LEGS].any()   # the legs only
    # the detections are the clean ones again, but for the swaps not found
    np.testing.assert_array_equal(corrected, exchange(clean, truth & ~found))


def test_no_false_swaps_on_clean_data(rig) -> None:
    body = walking_body(150, start=(-0.8, 0.0), speed_m_s=1.2, heading_deg=-10)
    noise_only = simulate_detections(rig, body, DetectorErrors(noise_px=3.0, outlier_rate=0.0, seed=7)).keypoints
    assert not SwapCorrector(rig).correct(noise_only)[1].any()
    # gross outliers on both sides of a pair are what could look like a swap; they do not
    with_outliers = simulate_detections(rig, body, DetectorErrors(seed=7)).keypoints
    _, found = SwapCorrector(rig).correct(with_outliers)
    assert found.any(-1).mean() < 0.005


def test_a_frame_gets_the_same_verdict_whatever_run_it_arrives_in(rig, scene) -> None:
    swapped = scene[2]
    whole, found = SwapCorrector(rig).correct(swapped)
    stream = SwapCorrector(rig)
    runs = [stream.correct(swapped[:, s:s + 7]) for s in range(0, swapped.shape[1], 7)]
    np.testing.assert_array_equal(np.concatenate([r[1] for r in runs], axis=1), found)
    np.testing.assert_array_equal(np.concatenate([r[0] for r in runs], axis=1), whole)


@pytest.mark.parametrize("live", [False, True])
def test_both_paths_undo_the_swaps(rig, scene, live: bool) -> None:
    body, clean, swapped, truth = scene
    opts = ReconstructionOptions(live=live, prior=None)
    with_swaps = reconstruct(rig, _take(rig, swapped), opts)
    without = reconstruct(rig, _take(rig, clean), opts)
    counted = with_swaps.report.frames_with_left_right_swapped_per_camera
    assert counted[rig.names[1]] >= 10 and counted[rig.names[2]] >= 7
    assert counted[rig.names[0]] == counted[rig.names[3]] == 0
    assert sum(without.report.frames_with_left_right_swapped_per_camera.values()) == 0
    err_swaps, err_clean = mpjpe(with_swaps.points.points3d, body), mpjpe(without.points.points3d, body)
    assert abs(err_swaps - err_clean) < 0.0005                           # metres: as if there were no swaps
    # swaps left in are averaged in (or outvoted, losing the view): worse
    opts.swaps = SwapOptions(enabled=False)
    assert mpjpe(reconstruct(rig, _take(rig, swapped), opts).points.points3d, body) > err_swaps


def test_pushing_frames_one_at_a_time_undoes_the_same_swaps(rig, scene) -> None:
    swapped = scene[2]
    live = reconstruct(rig, _take(rig, swapped), ReconstructionOptions(live=True, prior=None))
    stream = Reconstructor(rig, 30.0, options=ReconstructionOptions(live=True, prior=None))
    points = np.stack([stream.push(swapped[:, f]).points for f in range(swapped.shape[1])])
    np.testing.assert_allclose(points, live.points.points3d, rtol=0, atol=1e-12)
    assert stream.report().frames_with_left_right_swapped_per_camera == \
        live.report.frames_with_left_right_swapped_per_camera


# --- the simulated detector ------------------------------------------------------------------

def _errors(rig, body, **kw) -> np.ndarray:
    """``(C, F, J, 2)`` detections minus true projections, with no noise, outliers or occlusion."""
    views = simulate_detections(rig, body, DetectorErrors(noise_px=0.0, outlier_rate=0.0, occlusion_rate=0.0, **kw))
    return views.keypoints[..., :2] - rig.project(body)


def test_bias_is_a_fixed_offset_of_the_given_length_per_joint_and_view(rig) -> None:
    body = walking_body(60)
    err = _errors(rig, body, bias_px=4.0, seed=1)
    ok = np.isfinite(err).all(-1)
    assert ok.mean() > 0.9
    mean = np.nanmean(np.where(ok[..., None], err, np.nan), axis=1)                             # (C, J, 2)
    np.testing.assert_allclose(np.linalg.norm(mean, axis=-1), 4.0, atol=1e-9)
    np.testing.assert_allclose(np.nanstd(np.where(ok[..., None], err, np.nan), axis=1), 0.0, atol=1e-9)
    assert np.abs(mean.reshape(-1, 2).mean(0)).max() < 1.5                                      # random directions


def test_jitter_has_the_given_spread_and_frame_to_frame_correlation(rig) -> None:
    body = walking_body(400, start=(-0.2, 0.0), speed_m_s=0.0)                                   # stays in view
    err = _errors(rig, body, jitter_px=3.0, jitter_correlation=0.8, seed=2)
    assert np.isfinite(err).all()
    series = np.moveaxis(err, 1, -1).reshape(-1, err.shape[1])                                  # (C * J * 2, F)
    assert series.std() == pytest.approx(3.0, rel=0.05)
    lag1 = (series[:, 1:] * series[:, :-1]).mean() / series.var()
    assert lag1 == pytest.approx(0.8, abs=0.03)
    assert DetectorErrors.correlation_for(10.0) == pytest.approx(np.exp(-0.1))


def test_swap_runs_are_one_view_at_a_time_and_recorded(rig) -> None:
    body = walking_body(600, start=(-0.2, 0.0), speed_m_s=0.0)
    e = DetectorErrors(noise_px=0.0, outlier_rate=0.0, occlusion_rate=0.0, swap_rate=0.05, seed=3)
    views = simulate_detections(rig, body, e)
    per_view = views.swapped.any(-1)                                                           # (C, F)
    assert per_view.sum(0).max() == 1                                                          # one view at a time
    assert 0.5 * e.swap_rate < per_view.mean() < 1.2 * e.swap_rate
    pairs = views.swapped[..., H36M17_PAIRS[:, 0]]
    np.testing.assert_array_equal(pairs, views.swapped[..., H36M17_PAIRS[:, 1]])                # both sides
    whole, legs_or_arms = pairs.all(-1), pairs.any(-1) & ~pairs.all(-1)
    assert whole.any() and legs_or_arms.any()
    limb_pairs = [np.isin(H36M17_PAIRS[:, 0], [H36M17.index("l_" + j) for j in limb]) for limb in LIMBS]
    assert all(any((row == mask).all() for mask in limb_pairs) for row in pairs[legs_or_arms])
    # a swapped joint is detected where its mirror projects; the rest where it projects
    expected = exchange(rig.project(body)[:, :, :, :], pairs)
    np.testing.assert_allclose(views.keypoints[..., :2], expected, atol=1e-9)


def test_the_new_errors_leave_the_default_draws_alone(rig) -> None:
    body = walking_body(60)
    plain = simulate_detections(rig, body, DetectorErrors(seed=5))
    realistic = simulate_detections(rig, body, DetectorErrors(**{**DetectorErrors.realistic(seed=5).__dict__,
                                                                 "noise_px": 3.0, "bias_px": 0.0, "jitter_px": 0.0,
                                                                 "swap_rate": 0.0}))
    np.testing.assert_array_equal(plain.keypoints, realistic.keypoints)
    assert not plain.swapped.any()
    biased = simulate_detections(rig, body, DetectorErrors(seed=5, bias_px=4.0))
    np.testing.assert_array_equal(biased.outliers, plain.outliers)
    np.testing.assert_array_equal(biased.occluded, plain.occluded)
