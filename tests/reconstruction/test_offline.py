"""The offline path in bounded memory: refinement windows, chunked stages."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.pose_metrics import mpjpe_absolute
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.options import RefineWindow
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body


def _take(rig, body: np.ndarray) -> Keypoints2D:
    views = simulate_detections(rig, body, DetectorErrors(seed=1))
    return Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0)


@pytest.fixture(scope="module")
def rig():
    return make_studio_rig(4, (1920, 1080), seed=3)


def test_small_windows_give_the_whole_take_result(rig) -> None:
    body = walking_body(150, start=(-1.0, -0.4), speed_m_s=0.6, heading_deg=20)
    take = _take(rig, body)
    whole = reconstruct(rig, take, ReconstructionOptions()).points.points3d            # one 600-frame window
    windows = reconstruct(rig, take, ReconstructionOptions(refine_window=RefineWindow(50, 12))).points.points3d
    assert np.nanmax(np.abs(windows - whole)) < 1e-3                                   # metres
    assert abs(mpjpe_absolute(windows, body) - mpjpe_absolute(whole, body)) < 1e-4


def test_memory_grows_by_a_few_kilobytes_per_frame(rig) -> None:
    """The refinement's memory is a window's; the rest keeps compact per-frame arrays (the
    whole-take refinement added about 150 kB per frame)."""
    peaks = []
    for frames in (300, 1200):
        take = _take(rig, walking_body(frames, speed_m_s=0.0, start=(-0.2, 0.1)))      # walking on the spot
        opts = ReconstructionOptions(prior=None, refine_window=RefineWindow(100, 20))
        tracemalloc.start()
        try:
            reconstruct(rig, take, opts)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert (peaks[1] - peaks[0]) / 900 < 16_000, peaks                                # bytes per frame
