"""Board views weighed by their corners' noise: the weights, and what they do for a calibration."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
from posestudio.calibration.view_noise import MAX_PRECISION, MIN_PRECISION, RAYLEIGH_MEDIAN, view_precisions
from posestudio.cli import build_parser
from posestudio.commands.calibrate import options_from_args
from posestudio.synthetic.board_detections import observe, smooth_board_path
from posestudio.synthetic.studio_rig import ring_rig

FPS = 30.0


def _residual_norms(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """Norms of ``n`` 2D Gaussian residuals of ``sigma`` pixels per coordinate."""
    return np.linalg.norm(sigma * rng.standard_normal((n, 2)), axis=1)


def test_a_noisier_view_weighs_less_by_its_variance():
    rng = np.random.default_rng(0)
    sharp, typical, blurred = (_residual_norms(rng, s, 1000) for s in (0.12, 0.2, 0.5))
    err = np.concatenate([typical, sharp, blurred, typical])
    view = np.repeat([7, 3, 11, 5], 1000)  # any view labels
    w = view_precisions(view, err)
    by_view = {v: w[view == v] for v in (3, 5, 7, 11)}
    for weights in by_view.values():
        assert np.ptp(weights) == 0  # one weight per view
    # the median corner is a typical one: weight ~1; the others by the ratio of variances
    assert by_view[7][0] == pytest.approx(1.0, rel=0.2)
    assert by_view[3][0] / by_view[7][0] == pytest.approx((0.2 / 0.12) ** 2, rel=0.2)
    assert by_view[7][0] / by_view[11][0] == pytest.approx((0.5 / 0.2) ** 2, rel=0.2)


def test_a_view_of_few_corners_is_not_given_an_extreme_weight():
    rng = np.random.default_rng(1)
    err = np.concatenate([_residual_norms(rng, 0.2, 500), [3.0, 3.5], [1e-4, 2e-4, 1e-4]])
    view = np.concatenate([np.zeros(500, int), [1, 1], [2, 2, 2]])
    w = view_precisions(view, err)
    typical_sigma = np.median(err) / RAYLEIGH_MEDIAN
    raw_outlier_view = typical_sigma**2 / (3.25 / RAYLEIGH_MEDIAN) ** 2
    assert MIN_PRECISION <= w[500] and w[500] > 3 * raw_outlier_view  # shrunk towards typical
    assert w[-1] <= MAX_PRECISION
    assert view_precisions(np.zeros(0, int), np.zeros(0)).shape == (0,)


def _focal_and_principal_point_errors(rig, truth) -> tuple[np.ndarray, np.ndarray]:
    focal = [100 * abs(np.mean(np.divide(e.focal, g.focal)) - 1) for e, g in zip(rig, truth)]
    pp = [np.linalg.norm(np.subtract(e.principal_point, g.principal_point)) for e, g in zip(rig, truth)]
    return np.asarray(focal), np.asarray(pp)


def test_weighing_views_keeps_a_run_of_blurred_frames_from_pulling_a_camera(studio_board):
    """A camera whose first 40 % of board views are 8x noisier (a fast, blurred pass of the board):
    weighed by view, its intrinsics come out about twice as accurate, and the other cameras', which
    share those board poses, no worse."""
    truth = ring_rig()
    errors = {False: [], True: []}
    for seed in range(3):
        dets = observe(truth, studio_board, smooth_board_path(seed, extent_m=2.0), 150, FPS, noise_px=0.1, seed=seed)
        rng = np.random.default_rng(seed)
        blurred = dets[1].observations[: int(0.4 * len(dets[1].observations))]
        for obs in blurred:
            obs.pixels = obs.pixels + 0.8 * rng.standard_normal(obs.pixels.shape)
        for weigh in (False, True):
            res = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index", weigh_views=weigh),
                                            fps=FPS, progress=None)
            errors[weigh].append(_focal_and_principal_point_errors(res.rig, truth))

    def rms(weigh: bool, which: int, cams: list[int]) -> float:
        return float(np.sqrt(np.mean([e[which][cams] ** 2 for e in errors[weigh]])))

    noisy, others = [1], [0, 2, 3]
    assert rms(True, 0, noisy) < 0.6 * rms(False, 0, noisy)  # focal
    assert rms(True, 1, noisy) < 0.7 * rms(False, 1, noisy)  # principal point
    assert rms(True, 0, others) < 1.1 * rms(False, 0, others)
    assert rms(True, 1, others) < 1.1 * rms(False, 1, others)


def test_the_command_weighs_views_unless_told_otherwise():
    base = ["calibrate", "--board", "b.toml", "--out", "rig.toml", "cam0.mp4", "cam1.mp4"]
    assert options_from_args(build_parser().parse_args(base)) == CalibrationOptions()
    assert options_from_args(build_parser().parse_args([*base, "--views-alike"])).weigh_views is False
