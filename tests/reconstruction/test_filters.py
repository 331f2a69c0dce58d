"""Behaviour of the causal 1-euro filter, the zero-phase smoother and gap filling."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.reconstruction.filters import OneEuroFilter, butterworth_zero_phase, fill_gaps, finite_runs, one_euro

FPS = 60.0


def _mean_abs_accel(x: np.ndarray) -> float:
    return float(np.nanmean(np.abs(np.diff(x, 2, axis=0))))


def _noisy_sine(n: int = 600, fps: float = FPS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) / fps
    clean = np.zeros((n, 3, 3))
    clean[..., 0] = 0.1 * np.sin(2 * np.pi * 0.5 * t)[:, None]
    clean[..., 2] = 1.0
    noisy = clean + np.random.default_rng(seed).normal(scale=0.005, size=clean.shape)
    return clean, noisy


# ------------------------------------------------------------------------------- one euro

def test_one_euro_reduces_jitter() -> None:
    _, noisy = _noisy_sine()
    out = one_euro(noisy, FPS, min_cutoff=1.0, beta=1.0)
    assert out.shape == noisy.shape
    assert _mean_abs_accel(noisy) / _mean_abs_accel(out) > 5.0


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("fraction", [0.63, 0.9])
def test_one_euro_step_lag_within_documented_bound(beta: float, fraction: float) -> None:
    step = np.zeros((120, 2, 3))
    step[60:] = [0.1, -0.05, 0.02]
    filt = OneEuroFilter(min_cutoff=1.0, beta=beta)
    out = one_euro(step, FPS, min_cutoff=1.0, beta=beta)
    covered = (out[60:] - step[0]) / (step[60] - step[0])           # share of the step covered
    reached = np.argmax(np.all(covered >= fraction, axis=(1, 2)))
    assert reached > 0 or beta > 0                                   # the filter does smooth
    bound = filt.step_latency_bound(1 / FPS, fraction)
    assert reached / FPS <= bound
    tau = 1 / (2 * np.pi * 1.0)
    assert bound <= -np.log(1 - fraction) * tau + 2.5 / FPS         # the closed form in the doc
    assert np.all(np.diff(out[60:, 0, 0]) >= 0) and out[-1, 0, 0] <= 0.1   # no overshoot


def test_one_euro_beta_reduces_lag() -> None:
    step = np.zeros((120, 1, 3))
    step[60:] = 0.1
    slow = one_euro(step, FPS, beta=0.0)[60:, 0, 0]
    fast = one_euro(step, FPS, beta=2.0)[60:, 0, 0]
    assert np.argmax(fast >= 0.063) < np.argmax(slow >= 0.063)


def test_one_euro_is_causal() -> None:
    _, noisy = _noisy_sine(200)
    other = noisy.copy()
    other[120:] += np.random.default_rng(1).normal(scale=0.5, size=other[120:].shape)
    a = one_euro(noisy, FPS)
    b = one_euro(other, FPS)
    np.testing.assert_array_equal(a[:120], b[:120])
    assert not np.allclose(a[120:], b[120:])
    # the first sample passes through unchanged
    np.testing.assert_array_equal(a[0], noisy[0])


def test_one_euro_nan_holds_state_and_equals_dropped_frames() -> None:
    _, noisy = _noisy_sine(200)
    holes = noisy.copy()
    gone = np.r_[30:34, 90, 150:155]
    holes[gone, 1] = np.nan                                          # joint 1 missing at times
    holes[91, 2, 0] = np.nan                                         # one coordinate = whole joint
    out = one_euro(holes, FPS)
    assert np.isnan(out[gone, 1]).all() and np.isnan(out[91, 2]).all()
    assert np.isfinite(np.delete(out[:, 1], gone, axis=0)).all()
    np.testing.assert_array_equal(out[:, 0], one_euro(noisy, FPS)[:, 0])   # others unaffected
    # skipping NaN frames == filtering the remaining frames with their true (uneven) timestamps
    keep = np.setdiff1d(np.arange(200), gone)
    t = np.arange(200) / FPS
    dropped = one_euro(noisy[keep][:, 1:2], times=t[keep])
    np.testing.assert_allclose(out[keep, 1:2], dropped, rtol=0, atol=1e-15)


def test_one_euro_variable_dt_and_reset() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0, reset_after_s=0.5)
    x0 = np.zeros((1, 3))
    filt(x0, 0.0)
    y_short = filt(np.ones((1, 3)), 0.01)[0, 0]
    filt.reset()
    filt(x0, 0.0)
    y_long = filt(np.ones((1, 3)), 0.1)[0, 0]
    a = lambda dt: 1 / (1 + 1 / (2 * np.pi * dt))                     # noqa: E731
    assert y_short == pytest.approx(a(0.01)) and y_long == pytest.approx(a(0.1))
    assert filt(np.full((1, 3), 5.0), 1.0)[0, 0] == 5.0             # gap > reset_after_s: restart
    with pytest.raises(ValueError):
        filt(x0, 1.0)                                               # time must increase
    with pytest.raises(ValueError):
        filt(np.zeros((2, 3)), 2.0)                                 # joint count is fixed


def test_one_euro_constant_signal_with_jittered_timestamps() -> None:
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.uniform(0.005, 0.05, size=100))
    const = np.broadcast_to(np.array([0.2, -0.1, 1.3]), (100, 4, 3))
    np.testing.assert_allclose(one_euro(const, times=t), const, atol=1e-15)


# ------------------------------------------------------------------------------- zero phase

def test_butterworth_no_phase_lag_below_cutoff() -> None:
    fps, n = 100.0, 1000
    t = np.arange(n) / fps
    sine = 0.1 * np.sin(2 * np.pi * 1.5 * t)
    pts = np.zeros((n, 2, 3))
    pts[:, :, 0] = sine[:, None]
    out = butterworth_zero_phase(pts, fps, cutoff_hz=6.0)
    y = out[:, 0, 0]
    core = slice(100, n - 100)
    lags = np.arange(-10, 11)
    xc = [np.dot(sine[core], np.roll(y, -k)[core]) for k in lags]
    assert lags[int(np.argmax(xc))] == 0
    np.testing.assert_allclose(y[core], sine[core], atol=0.1 * 0.01)    # within 1 % of amplitude
    # a causal filter of the same order would lag: check the test can see a lag
    from scipy import signal
    sos = signal.butter(4, 6.0, fs=fps, output="sos")
    causal = signal.sosfilt(sos, sine)
    xc_c = [np.dot(sine[core], np.roll(causal, -k)[core]) for k in lags]
    assert lags[int(np.argmax(xc_c))] > 0


def test_butterworth_attenuates_above_cutoff() -> None:
    fps, n = 100.0, 1000
    t = np.arange(n) / fps
    pts = np.zeros((n, 1, 3))
    pts[:, 0, 0] = 0.01 * np.sin(2 * np.pi * 20.0 * t)               # 20 Hz, well above 6 Hz
    pts[:, 0, 1] = np.random.default_rng(3).normal(scale=0.01, size=n)  # white noise
    out = butterworth_zero_phase(pts, fps, cutoff_hz=6.0)
    core = slice(50, n - 50)
    assert np.abs(out[core, 0, 0]).max() < 0.01 * 1e-3                # > 60 dB down
    # white noise keeps about the share of its power below the cutoff: 6 / 50 Hz -> std * ~0.35
    assert out[core, 0, 1].std() < 0.45 * pts[core, 0, 1].std()


def test_butterworth_gap_aware() -> None:
    fps, n = 100.0, 400
    t = np.arange(n) / fps
    clean = np.zeros((n, 2, 3))
    clean[..., 0] = 0.2 * np.sin(2 * np.pi * 1.0 * t)[:, None]
    noisy = clean + np.random.default_rng(4).normal(scale=0.003, size=clean.shape)
    noisy[100:105, 0] = np.nan                                       # short gap: filled
    noisy[200:260, 0] = np.nan                                       # long gap: stays NaN
    noisy[:3, 1] = np.nan                                            # leading: stays NaN
    out, filled = butterworth_zero_phase(noisy, fps, 6.0, max_gap_frames=10, return_mask=True)
    assert np.isnan(out[200:260, 0]).all() and np.isnan(out[:3, 1]).all()
    assert np.isfinite(out[100:105, 0]).all() and filled[100:105, 0].all()
    assert filled.sum() == 5
    ok = np.isfinite(out)
    err = np.abs(out - clean)
    assert np.nanmean(err[ok]) < np.nanmean(np.abs(noisy - clean)[ok]) * 0.5
    assert err[100:105, 0].max() < 0.010                             # filled from noisy neighbours
    interior = np.r_[15:90, 115:190, 270:385]                        # away from run ends and gaps
    assert np.sqrt((err[interior] ** 2).mean()) < 0.4 * 0.003 and err[interior].max() < 0.005
    with pytest.raises(ValueError):
        butterworth_zero_phase(noisy, fps, cutoff_hz=60.0)


# ------------------------------------------------------------------------------- gap filling

def _smooth_curve(n: int = 300, fps: float = 100.0) -> np.ndarray:
    t = np.arange(n) / fps
    pts = np.empty((n, 3, 3))
    for j in range(3):
        pts[:, j, 0] = 0.3 * np.sin(2 * np.pi * 1.0 * t + j)
        pts[:, j, 1] = 0.2 * np.cos(2 * np.pi * 0.7 * t - j)
        pts[:, j, 2] = 1.0 + 0.1 * t**2
    return pts


def test_fill_gaps_cubic_accurate_and_long_gaps_left() -> None:
    truth = _smooth_curve()
    pts = truth.copy()
    pts[50:60, 0] = np.nan                                          # 10 frames, filled
    pts[150:158, 0, 2] = np.nan                                     # one NaN coord: joint missing
    pts[50:60, 1] = np.nan                                          # same pattern as joint 0 there
    pts[100:140, 1] = np.nan                                        # 40 frames: too long
    pts[:5, 2] = np.nan                                             # leading: never extrapolated
    pts[-3:, 2] = np.nan                                            # trailing
    pts[200:212, 2] = np.nan                                        # 12 frames: filled
    filled, mask = fill_gaps(pts, max_gap_frames=12, method="cubic")
    expected = np.zeros(mask.shape, bool)
    expected[50:60, 0] = expected[150:158, 0] = expected[50:60, 1] = expected[200:212, 2] = True
    np.testing.assert_array_equal(mask, expected)
    assert np.abs(filled[mask] - truth[mask]).max() < 0.001         # < 1 mm
    assert np.isnan(filled[100:140, 1]).all()
    assert np.isnan(filled[:5, 2]).all() and np.isnan(filled[-3:, 2]).all()
    assert np.isnan(filled[150:158, 0]).sum() == 0                   # all three coordinates filled
    known = np.isfinite(pts).all(axis=-1)
    np.testing.assert_array_equal(filled[known], pts[known])         # valid data untouched
    # a tighter limit leaves the 12-frame gap
    _, mask10 = fill_gaps(pts, max_gap_frames=11)
    assert not mask10[200:212, 2].any() and mask10[50:60, 0].all()


def test_fill_gaps_linear_exact_on_line_and_times() -> None:
    n = 50
    t = np.cumsum(np.r_[0.0, np.random.default_rng(5).uniform(0.01, 0.03, n - 1)])
    line = np.zeros((n, 2, 3))
    line[..., 0] = (2.0 * t)[:, None]
    line[..., 1] = (-0.5 * t + 1.0)[:, None]
    pts = line.copy()
    pts[10:15, 0] = np.nan
    pts[30:33, 1] = np.nan
    filled, mask = fill_gaps(pts, 5, method="linear", times=t)
    assert mask.sum() == 8
    np.testing.assert_allclose(filled, line, atol=1e-12)
    filled_c, _ = fill_gaps(pts, 5, method="cubic", times=t)
    np.testing.assert_allclose(filled_c, line, atol=1e-9)
    filled_p, _ = fill_gaps(pts, 5, method="pchip", times=t)
    np.testing.assert_allclose(filled_p, line, atol=1e-9)
    # frame index as abscissa on uneven times is only approximate
    assert np.abs(fill_gaps(pts, 5, method="linear")[0] - line).max() > 1e-6
    with pytest.raises(ValueError):
        fill_gaps(pts, 5, method="nearest")


def test_fill_gaps_nothing_to_do() -> None:
    pts = _smooth_curve(20)
    out, mask = fill_gaps(pts, 5)
    np.testing.assert_array_equal(out, pts)
    assert not mask.any()
    assert finite_runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
