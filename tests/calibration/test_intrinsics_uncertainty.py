"""The calibration says how well each camera's intrinsics are known, and warns where poorly."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
from posestudio.synthetic.board_detections import observe, smooth_board_path
from posestudio.synthetic.studio_rig import ring_rig

FPS = 30.0


@pytest.fixture(scope="module")
def board() -> BoardSpec:
    return BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50")


@pytest.fixture(scope="module")
def take(board):
    rig = ring_rig()
    dets = observe(rig, board, smooth_board_path(0, extent_m=2.0), 240, FPS, offsets_s=[0.0, 0.004, -0.006, 0.01],
                   noise_px=0.3, seed=4)
    return rig, dets


def test_reported_standard_deviations_match_the_errors(board, take):
    rig, dets = take
    res = calibrate_from_detections(dets, board, CalibrationOptions(), fps=FPS, progress=None)
    z_focal, z_pp = [], []
    for cam, truth in zip(res.rig, rig):
        entry = res.report.cameras[cam.name]
        assert entry.focal_std_px is not None and entry.principal_point_std_px is not None
        z_focal += list(np.abs(np.subtract(cam.focal, truth.focal)) / entry.focal_std_px)
        z_pp += list(np.abs(np.subtract(cam.principal_point, truth.principal_point)) / entry.principal_point_std_px)
    # Errors of a few standard deviations at most, and not far below them either (an inflated
    # standard deviation would hide a poorly constrained camera).
    assert max(z_focal) < 4.0 and max(z_pp) < 4.0
    assert 0.2 < np.median(z_focal + z_pp) < 2.0
    assert res.report.adjustment.time_model == "quadratic"


def test_a_camera_that_saw_the_board_a_few_times_is_named(board, take):
    rig, dets = take
    weak = dets[2]
    keep = weak.observations[::25][:5]  # 5 views spread over the take instead of 150
    dets = list(dets)
    dets[2] = type(weak)(weak.name, weak.image_size, weak.n_frames, keep)
    res = calibrate_from_detections(dets, board, CalibrationOptions(), fps=FPS, progress=None)
    std = res.report.cameras[weak.name].focal_std_px
    others = [res.report.cameras[d.name].focal_std_px[0] for d in dets if d.name != weak.name]
    assert std[0] > 2 * max(others)
    lines = [w for w in res.report.warnings if "poorly constrained by this take" in w]
    assert len(lines) == 1 and weak.name in lines[0]
    assert "cam0" not in lines[0]  # 94 views, principal point +/-0.1 degree: well constrained
