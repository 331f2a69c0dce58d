"""A performer walking out of the rig's shared view: what the pipeline still gives, and says."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.keypoints_file import Keypoints2D
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.pipeline import CARRIED_CONFIDENCE, PRIOR_CONFIDENCE, ReconstructionOptions, reconstruct
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body


@pytest.fixture(scope="module")
def walk_out():
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    body = walking_body(120, start=(-0.5, 0.3), speed_m_s=1.3, heading_deg=20)
    views = simulate_detections(rig, body, DetectorErrors(noise_px=3.0, outlier_rate=0.05, occlusion_rate=0.05, seed=1))
    kp = Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0)
    # the rays and the prior alone (the lifting network's fill: tests/reconstruction/test_lifting_fill.py)
    with_prior = reconstruct(rig, kp, ReconstructionOptions(lifting=None))
    without = reconstruct(rig, kp, ReconstructionOptions(prior=None, lifting=None))
    return body, views, with_prior, without


def test_single_camera_frames_are_filled_and_labelled(walk_out) -> None:
    body, views, with_prior, without = walk_out
    seen_by = np.isfinite(views.keypoints[..., 0]).sum(axis=0)
    assert (seen_by[-30:] <= 1).mean() > 0.9                          # the take's end: one camera at most
    rep = with_prior.report
    assert rep.fraction_triangulated < 0.7
    assert rep.fraction_reconstructed > rep.fraction_triangulated + 0.25
    assert rep.fraction_reconstructed > without.report.fraction_reconstructed + 0.1
    assert rep.fraction_carried_along_rays > 0.05 and rep.fraction_filled_by_prior > 0.05
    conf = with_prior.points.confidence
    added = np.isclose(conf, CARRIED_CONFIDENCE) | np.isclose(conf, PRIOR_CONFIDENCE)
    assert added.sum() == round((rep.fraction_carried_along_rays + rep.fraction_filled_by_prior) * conf.size)


def test_filled_joints_are_decimetre_accurate_not_guesses(walk_out) -> None:
    body, _, with_prior, _ = walk_out
    pts, conf = with_prior.points.points3d, with_prior.points.confidence
    added = np.isclose(conf, CARRIED_CONFIDENCE) | np.isclose(conf, PRIOR_CONFIDENCE)
    err = np.linalg.norm(pts - body, axis=-1)[added]
    # holding the last triangulated pose (what a user would otherwise get) is off by metres here
    last = np.nonzero(np.isfinite(pts).all(-1).all(-1) & ~added.any(-1))[0].max()
    hold = np.linalg.norm(body[last][None] - body, axis=-1)[added]
    assert np.median(err) < 0.1 and np.mean(err) < 0.15, (np.median(err), np.mean(err))
    assert np.mean(err) < 0.2 * np.mean(hold)
    observed = np.isfinite(pts).all(-1) & ~added
    assert np.median(np.linalg.norm(pts - body, axis=-1)[observed]) < 0.015
