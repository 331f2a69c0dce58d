"""Exact checks of the 3D pose metrics on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posestudio.core import alignment, skeleton
from posestudio.core import pose_metrics as M

F, J = 12, 17


@pytest.fixture()
def gt() -> np.ndarray:
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=(F, J, 3))
    pose[:, :, 2] += 1.0
    return pose


def _random_similarity(rng: np.random.Generator, f: int):
    rot = Rotation.random(f, random_state=rng).as_matrix()          # (F, 3, 3)
    scale = rng.uniform(0.5, 2.0, size=f)
    shift = rng.normal(size=(f, 1, 3))
    return rot, scale, shift


def test_mpjpe_known_offsets(gt: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    # every non-root joint moves by exactly 20 mm in a random direction; the root stays
    d = rng.normal(size=(F, J, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    d[:, 0] = 0.0
    pred = gt + 0.020 * d
    assert M.mpjpe(pred, gt) == pytest.approx(0.020 * (J - 1) / J, rel=1e-12)
    assert M.mpjpe_absolute(pred, gt) == pytest.approx(0.020 * (J - 1) / J, rel=1e-12)
    per = M.mpjpe(pred, gt, per_joint=True)
    assert per.shape == (J,)
    np.testing.assert_allclose(per[1:], 0.020, rtol=1e-12)
    assert per[0] == 0.0


def test_mpjpe_translation_root_vs_absolute(gt: np.ndarray) -> None:
    shift = np.array([0.03, -0.04, 0.0])                            # 50 mm
    pred = gt + shift
    assert M.mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert M.mpjpe_absolute(pred, gt) == pytest.approx(0.050, rel=1e-12)
    assert M.mpjpe(pred, gt, root=None) == pytest.approx(0.050, rel=1e-12)
    assert M.pck3d(pred, gt, root=None, threshold=0.049) == 0.0
    assert M.pck3d(pred, gt) == 1.0


def test_p_mpjpe_zero_for_similarity_copy(gt: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    rot, scale, shift = _random_similarity(rng, F)
    pred = scale[:, None, None] * np.einsum("fik,fjk->fji", rot, gt) + shift
    assert M.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert M.mpjpe(pred, gt) > 0.05
    # the inverse direction too, and per joint
    assert np.all(M.p_mpjpe(gt, pred, per_joint=True) < 1e-12)


def test_p_mpjpe_reflection(gt: np.ndarray) -> None:
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert M.p_mpjpe(mirrored, gt) > 0.05                          # no mirror allowed by default
    assert M.p_mpjpe(mirrored, gt, allow_reflection=True) == pytest.approx(0.0, abs=1e-12)
    _, ok = alignment.procrustes_align(mirrored, gt)
    assert ok.all()


def test_procrustes_is_least_squares_optimum(gt: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    rot, scale, shift = _random_similarity(rng, F)
    pred = scale[:, None, None] * np.einsum("fik,fjk->fji", rot, gt) + shift
    pred += rng.normal(scale=0.02, size=pred.shape)
    aligned, _ = alignment.procrustes_align(pred, gt)
    # the true inverse transform cannot beat the fitted one in squared error, per frame
    inv = np.einsum("fki,fjk->fji", rot, pred - shift) / scale[:, None, None]
    fitted = ((aligned - gt) ** 2).sum(axis=(1, 2))
    true = ((inv - gt) ** 2).sum(axis=(1, 2))
    assert np.all(fitted <= true + 1e-12)
    assert 0.0 < M.p_mpjpe(pred, gt) < 0.02 * 2


def test_n_mpjpe_zero_for_scaled_root_aligned_copy(gt: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    scale = rng.uniform(0.5, 2.0, size=(F, 1, 1))
    rel = gt - gt[:, :1]
    pred = scale * rel + rng.normal(size=(F, 1, 3))                 # any root position
    assert M.n_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert M.mpjpe(pred, gt) > 0.01
    # a rotation is not undone by a scale
    rot = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    assert M.n_mpjpe(gt @ rot.T, gt) > 0.01


def test_n_mpjpe_least_squares_scale() -> None:
    gt = np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    pred = np.array([[0.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0]])
    # s = <p, g> / <p, p> = (2 + 1) / (4 + 1) = 0.6 -> errors 0, |1.2-1| = 0.2, |0.6-1| = 0.4
    assert M.n_mpjpe(pred, gt) == pytest.approx((0.0 + 0.2 + 0.4) / 3, rel=1e-12)


def test_pck_and_auc_hand_computed() -> None:
    gt = np.zeros((1, 4, 3))
    pred = np.zeros((1, 4, 3))
    pred[0, 1, 0] = 0.0975      # hits thresholds 100..150 mm -> 11 of 31
    pred[0, 2, 1] = 0.1475      # hits 150 mm only            ->  1 of 31
    pred[0, 3, 2] = 0.2         # hits none
    assert M.pck3d(pred, gt) == pytest.approx(3 / 4)
    assert M.pck3d(pred, gt, threshold=0.1) == pytest.approx(2 / 4)
    assert M.auc_pck3d(pred, gt) == pytest.approx((31 + 11 + 1 + 0) / (4 * 31))
    np.testing.assert_allclose(M.auc_pck3d(pred, gt, per_joint=True), [1, 11 / 31, 1 / 31, 0])
    assert len(M.AUC_THRESHOLDS) == 31 and M.AUC_THRESHOLDS[-1] == 0.150


def test_nan_joints_are_excluded_and_counted(gt: np.ndarray) -> None:
    pred = gt.copy()
    pred[:, 1:, 0] += 0.010                                         # 10 mm on every non-root joint
    pred[0, 5] = np.nan                                             # one missing prediction
    gt_nan = gt.copy()
    gt_nan[1, 6, 2] = np.nan                                        # one coordinate missing in gt
    n_valid_nonroot = F * (J - 1) - 2
    expected = 0.010 * n_valid_nonroot / (n_valid_nonroot + F)
    assert M.mpjpe(pred, gt_nan) == pytest.approx(expected, rel=1e-12)
    mask = M.valid_mask(pred, gt_nan)
    assert mask.sum() == F * J - 2 and not mask[0, 5] and not mask[1, 6]
    per = M.mpjpe(pred, gt_nan, per_joint=True)
    assert np.isfinite(per).all()
    # a missing root removes its whole frame from root-aligned metrics only
    pred[2, 0] = np.nan
    assert M.valid_mask(pred, gt_nan, root=0)[2].sum() == 0
    assert M.valid_mask(pred, gt_nan)[2].sum() == J - 1
    s = M.summarise(pred, gt_nan)
    assert s["n_evaluated"] == F * J - 3 and s["n_excluded"] == 3
    assert s["mpjpe_mm"] == pytest.approx(10.0 * (n_valid_nonroot - (J - 1)) /
                                          (n_valid_nonroot - (J - 1) + F - 1), rel=1e-9)
    # nothing valid: NaN, not an error
    assert np.isnan(M.mpjpe(np.full((2, J, 3), np.nan), gt[:2]))
    assert np.isnan(M.p_mpjpe(np.full((2, J, 3), np.nan), gt[:2]))


def test_p_mpjpe_with_nan_fits_on_valid_joints(gt: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    rot, scale, shift = _random_similarity(rng, F)
    pred = scale[:, None, None] * np.einsum("fik,fjk->fji", rot, gt) + shift
    pred[:, 3] = np.nan
    pred[4, :15] = np.nan                                           # frame 4 has 2 valid joints
    assert M.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    _, ok = alignment.procrustes_align(pred, gt)
    assert not ok[4] and ok.sum() == F - 1


def test_bone_length_cv() -> None:
    rng = np.random.default_rng(6)
    base = rng.normal(size=(4, 3))
    rot = Rotation.random(30, random_state=rng).as_matrix()
    rigid = np.einsum("fik,jk->fji", rot, base) + rng.normal(size=(30, 1, 3))
    bones = [(0, 1), (1, 2), (2, 3)]
    assert skeleton.bone_length_cv(rigid, bones) == pytest.approx(0.0, abs=1e-12)
    # one bone alternating between length 1 and 3: std 1, mean 2 -> CV 0.5
    pts = np.zeros((4, 3, 3))
    pts[:, 1, 0] = [1, 3, 1, 3]
    pts[:, 2, 0] = pts[:, 1, 0] + 1.0                               # second bone constant
    assert skeleton.bone_length_cv(pts, [(0, 1), (1, 2)], per_bone=True) == pytest.approx([0.5, 0.0])
    assert skeleton.bone_length_cv(pts, [(0, 1), (1, 2)]) == pytest.approx(0.25)
    pts[1, 1] = np.nan                                              # lengths 1, 1, 3 remain
    cv = skeleton.bone_length_cv(pts, [(0, 1)], per_bone=True)[0]
    assert cv == pytest.approx(np.std([1, 1, 3]) / np.mean([1, 1, 3]))


def test_coverage() -> None:
    pts = np.zeros((4, 5, 3))
    pts[0, 0, 1] = np.nan
    pts[:, 4] = np.nan
    assert M.coverage(pts) == pytest.approx(15 / 20)
    np.testing.assert_allclose(M.coverage(pts, per_joint=True), [0.75, 1, 1, 1, 0])


def _pinhole(points: np.ndarray) -> np.ndarray:
    """Two toy cameras looking down +z from different x offsets, f = 1000 px, c = (500, 500)."""
    out = []
    for cx in (0.0, 1.0):
        p = points - np.array([cx, 0.0, 0.0])
        out.append(1000.0 * p[..., :2] / p[..., 2:3] + 500.0)
    return np.stack(out)


def test_reprojection_error_known_offset() -> None:
    rng = np.random.default_rng(7)
    pts = rng.uniform(-0.5, 0.5, size=(6, 4, 3)) + np.array([0, 0, 3.0])
    kp = _pinhole(pts) + np.array([3.0, 4.0])                       # 5 px everywhere
    conf = np.ones(kp.shape[:-1] + (1,))
    kp3 = np.concatenate([kp, conf], axis=-1)
    assert M.reprojection_error(pts, kp, _pinhole) == pytest.approx(5.0)
    kp3[1, :, 2] += [10.0, 0.0, 0.0]                                 # camera 1, joint 2: 15 px
    kp3[0, 0, 1, :2] = np.nan                                       # unseen
    kp3[0, 1, 1, 2] = 0.0                                           # confidence 0 = absent
    errs = M.reprojection_errors(pts, kp3, _pinhole)
    assert errs.shape == (2, 6, 4) and np.isnan(errs[0, 0, 1]) and np.isnan(errs[0, 1, 1])
    per_cj = M.reprojection_error(pts, kp3, _pinhole, per_camera=True, per_joint=True)
    assert per_cj.shape == (2, 4)
    np.testing.assert_allclose(per_cj, [[5, 5, 5, 5], [5, 5, np.hypot(13, 4), 5]])
    assert M.reprojection_error(pts, kp3, _pinhole, per_camera=True) == pytest.approx(
        [5.0, (5 * 18 + np.hypot(13, 4) * 6) / 24])
    pts_nan = pts.copy()
    pts_nan[:, 3] = np.nan
    assert M.reprojection_error(pts_nan, kp3, _pinhole, per_joint=True)[3] != 0
    assert np.isnan(M.reprojection_error(pts_nan, kp3, _pinhole, per_joint=True)[3])


def test_reprojection_error_with_camera_rig() -> None:
    from posestudio.core.camera import Camera
    from posestudio.core.rig import CameraRig

    k = np.array([[1000.0, 0, 500], [0, 1000.0, 500], [0, 0, 1]])
    rig = CameraRig([Camera("a", (1000, 1000), k, translation=np.array([0, 0, 3.0])),
                     Camera("b", (1000, 1000), k, translation=np.array([-1.0, 0, 3.0]))])
    pts = np.random.default_rng(8).uniform(-0.3, 0.3, size=(3, 5, 3))
    kp = rig.project(pts) + np.array([0.0, 2.0])
    assert M.reprojection_error(pts, kp, rig) == pytest.approx(2.0)


def test_summarise_units_and_keys(gt: np.ndarray) -> None:
    pred = gt + np.array([0.0, 0.0, 0.1])                           # 100 mm absolute, 0 relative
    pred[:, 1:, 0] += 0.004
    bones = [(0, 1), (1, 2)]
    s = M.summarise(pred, gt, bones, per_joint=True)
    assert s["mpjpe_mm"] == pytest.approx(4.0 * (J - 1) / J)
    assert s["mpjpe_absolute_mm"] > 99.0
    assert s["pck3d"] == 1.0 and s["pck_threshold_mm"] == pytest.approx(150.0)
    assert 0.0 < s["auc_pck3d"] < 1.0
    assert s["coverage"] == 1.0 and s["n_excluded"] == 0
    assert {"p_mpjpe_mm", "n_mpjpe_mm", "bone_length_cv", "bone_length_cv_gt"} <= s.keys()
    assert len(s["per_joint"]["mpjpe_mm"]) == J


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        M.mpjpe(np.zeros((3, 4, 3)), np.zeros((3, 5, 3)))
    with pytest.raises(ValueError):
        M.mpjpe(np.zeros((3, 4, 2)), np.zeros((3, 4, 2)))
    assert M.mpjpe(np.ones((4, 3)), np.ones((4, 3))) == 0.0        # a single pose is one frame
