"""A second person in view: one camera's detector following the wrong performer for a while."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration.synthetic import make_studio_rig
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.keypoints_file import Keypoints2D
from posestudio.reconstruction.metrics import mpjpe_absolute
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.reconstruction.synthetic_motion import walking_body
from posestudio.reconstruction.synthetic_views import DetectorErrors, simulate_detections


@pytest.mark.parametrize("live", [False, True])
def test_a_camera_that_follows_a_bystander_is_outvoted(live: bool) -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    performer = walking_body(120, start=(-1.0, -0.5), speed_m_s=0.6, heading_deg=20)
    bystander = walking_body(120, start=(0.8, 0.6), speed_m_s=0.5, heading_deg=200, stride_hz=1.1)
    kp = simulate_detections(rig, performer, DetectorErrors(seed=1)).keypoints
    other = simulate_detections(rig, bystander, DetectorErrors(seed=2)).keypoints
    kp[0, 30:80] = other[0, 30:80]                  # camera 0's detector locks onto the bystander
    result = reconstruct(rig, Keypoints2D(kp, rig.names, list(H36M17.joints), 30.0), ReconstructionOptions(live=live))
    pts = result.points.points3d
    swap = slice(30, 80)
    assert mpjpe_absolute(pts[swap], performer[swap]) < (0.01 if not live else 0.02)
    assert result.report["outlier_views_rejected"] > 0.8 * 50 * 17
