"""A second person in view: cameras whose detector follows the wrong performer for a while."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.pose_metrics import mpjpe_absolute
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.identity import exclude_other_people
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.reconstruction.triangulation import triangulate_robust
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

SWAP = slice(30, 80)


@pytest.fixture(scope="module")
def two_people():
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    performer = walking_body(120, start=(-1.0, -0.5), speed_m_s=0.6, heading_deg=20)
    bystander = walking_body(120, start=(0.8, 0.6), speed_m_s=0.5, heading_deg=200, stride_hz=1.1)
    kp = simulate_detections(rig, performer, DetectorErrors(seed=1)).keypoints
    other = simulate_detections(rig, bystander, DetectorErrors(seed=2)).keypoints
    return rig, performer, kp, other


@pytest.mark.parametrize("live", [False, True])
@pytest.mark.parametrize("wrong", [[0], [0, 1]], ids=["one camera", "two of four cameras"])
def test_cameras_that_follow_a_bystander_are_left_out(two_people, wrong, live) -> None:
    rig, performer, kp, other = two_people
    kp = kp.copy()
    kp[wrong, SWAP] = other[wrong, SWAP]              # these detectors lock onto the bystander
    result = reconstruct(rig, Keypoints2D(kp, rig.names, list(H36M17.joints), 30.0), ReconstructionOptions(live=live))
    pts = result.points.points3d
    assert mpjpe_absolute(pts[SWAP], performer[SWAP]) < (0.01 if not live else 0.02)
    excluded = result.report.frames_excluded_per_camera_as_another_person
    for c, name in enumerate(rig.names):
        if c in wrong:
            assert excluded[name] >= 0.7 * 50, excluded
        else:
            assert excluded[name] <= 3, excluded


def test_without_the_continuity_check_two_wrong_cameras_win_half_the_time(two_people) -> None:
    rig, performer, kp, other = two_people
    kp = kp.copy()
    kp[[0, 1], SWAP] = other[[0, 1], SWAP]
    plain = triangulate_robust(rig, kp).points
    assert mpjpe_absolute(plain[SWAP], performer[SWAP]) > 0.1        # what consensus alone gives
    cleaned, excluded = exclude_other_people(rig, kp, plain, 30.0)
    fixed = triangulate_robust(rig, cleaned).points
    assert mpjpe_absolute(fixed[SWAP], performer[SWAP]) < 0.04        # two-view triangulation, 3 px
    assert not excluded[:, :30].any() and excluded[[0, 1], SWAP].mean() > 0.7


def test_a_clean_take_loses_no_view(two_people) -> None:
    rig, performer, kp, _ = two_people
    cleaned, excluded = exclude_other_people(rig, kp, triangulate_robust(rig, kp).points, 30.0)
    assert not excluded.any()
    np.testing.assert_array_equal(np.isnan(cleaned), np.isnan(kp))
