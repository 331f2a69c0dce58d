"""Leave-one-camera-out residuals, a detector's error statistics, and multi-view pseudo-labels."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.keypoints_file import Keypoints2D
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.pseudo_labels import pseudo_labels
from posestudio.reconstruction.view_agreement import DetectorErrorStats, leave_one_camera_out, mirror_left_right
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig


@pytest.fixture(scope="module")
def take():
    rig = make_studio_rig(4, image_size=(1280, 720), seed=5, distortion="mild")
    body = walking_body(60, start=(-0.8, -0.3), speed_m_s=0.6)
    return rig, body


def _kp(rig, body, **errors) -> Keypoints2D:
    views = simulate_detections(rig, body, DetectorErrors(outlier_rate=0.0, occlusion_rate=0.0, **errors))
    return Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0)


def test_mirroring_exchanges_every_left_joint_with_its_right_twin() -> None:
    kp = np.arange(17 * 3, dtype=float).reshape(17, 3)
    m = mirror_left_right(kp)
    for side in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
        np.testing.assert_array_equal(m[H36M17.index("l_" + side)], kp[H36M17.index("r_" + side)])
    for mid in ("pelvis", "spine", "thorax", "neck", "head"):
        np.testing.assert_array_equal(m[H36M17.index(mid)], kp[H36M17.index(mid)])
    np.testing.assert_array_equal(mirror_left_right(m), kp)


def test_leave_one_out_measures_the_detector_not_the_fit(take) -> None:
    rig, body = take
    clean = leave_one_camera_out(rig, _kp(rig, body, noise_px=1.0, seed=1))
    assert clean.residual.shape == (4, 60, 17, 2)
    assert max(clean.median_px().values()) < 3.0
    # A fixed offset on one camera's detections: the others do not follow it, so that camera's
    # residuals show it (a reprojection error of its own fit would partly absorb it).
    kp = _kp(rig, body, noise_px=1.0, seed=1)
    kp.keypoints[2, ..., 0] += 12.0
    biased = leave_one_camera_out(rig, kp)
    assert np.nanmedian(biased.residual[2, ..., 0]) == pytest.approx(12.0, abs=1.5)
    medians = biased.median_px()
    assert max(medians, key=medians.get) == rig.names[2]


def test_error_statistics_recover_the_simulated_detector(take) -> None:
    rig, body = take
    kp = _kp(rig, body, noise_px=0.5, bias_px=6.0, seed=2)
    stats = DetectorErrorStats.measure(leave_one_camera_out(rig, kp))
    assert stats.bias_px == pytest.approx(6.0, rel=0.35)
    assert stats.outlier_rate < 0.01 and stats.swap_rate < 0.02
    swapped = _kp(rig, body, noise_px=1.0, seed=3)
    swapped.keypoints[1, 20:40] = mirror_left_right(swapped.keypoints[1, 20:40])
    stats = DetectorErrorStats.measure(leave_one_camera_out(rig, swapped))
    assert stats.swap_rate == pytest.approx(20 / (4 * 60), abs=0.03)


def test_pseudo_labels_come_from_the_views_that_agree(take) -> None:
    rig, body = take
    kp = _kp(rig, body, noise_px=2.0, seed=4)
    kp.keypoints[3, 10:20, H36M17.index("l_wrist"), :2] += 80.0  # camera 3's detector fails there
    points = reconstruct(rig, kp).points
    labels = pseudo_labels(rig, kp, points)
    truth = rig.project(body)
    kept = labels.kept
    assert kept.mean() > 0.8
    err = np.linalg.norm(labels.keypoints[..., :2] - truth, axis=-1)[kept]
    assert np.median(err) < 1.5  # better than the 2 px detections themselves
    wrist = H36M17.index("l_wrist")
    # The failed detections did not agree, but the other three cameras vouch for the label.
    assert kept[3, 10:20, wrist].all() and not labels.agreed[3, 10:20, wrist].any()
    assert (np.linalg.norm(labels.keypoints[3, 10:20, wrist, :2] - truth[3, 10:20, wrist], axis=-1) < 5).all()
