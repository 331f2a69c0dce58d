"""The geometry core's one definitions: alignment, rotations, projection Jacobian, robust weights, skeleton."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posestudio.core.alignment import procrustes_align, rigid_align, similarity_transforms
from posestudio.core.projection import (
    normalized_projection,
    normalized_projection_jacobian,
    to_camera,
    to_cameras,
    world_point_jacobian,
)
from posestudio.core.robust import cauchy_cost, cauchy_weights, huber_cost, huber_weights
from posestudio.core.rotations import (
    average_rotations,
    matrix_to_rodrigues,
    nearest_rotation,
    rodrigues_to_matrix,
    rotation_derivative_factor,
    skew,
)
from posestudio.core.skeleton import bone_length_per_joint, bone_lengths, scale_to_lengths


def _transforms(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (Rotation.random(n, random_state=seed).as_matrix(), rng.normal(0, 2, (n, 3)), rng.uniform(0.5, 2, n))


def test_similarity_recovers_known_transforms_batched() -> None:
    rot, t, s = _transforms(5)
    src = np.random.default_rng(1).normal(0, 1, (5, 12, 3))
    dst = s[:, None, None] * np.einsum("fij,fkj->fki", rot, src) + t[:, None]
    fit = similarity_transforms(src, dst)
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
    np.testing.assert_allclose(fit.translation, t, atol=1e-10)
    np.testing.assert_allclose(fit.scale, s, atol=1e-10)
    np.testing.assert_allclose(fit.apply(src), dst, atol=1e-10)
    r1, t1, s1 = rigid_align(src[0], dst[0], with_scale=True)
    np.testing.assert_allclose(r1, rot[0], atol=1e-10)
    assert s1 == pytest.approx(s[0])


def test_similarity_ignores_invalid_points_and_refuses_too_few() -> None:
    rot, t, s = _transforms(2, seed=3)
    src = np.random.default_rng(2).normal(0, 1, (2, 8, 3))
    dst = s[:, None, None] * np.einsum("fij,fkj->fki", rot, src) + t[:, None]
    dst[0, :3] += 50.0                                   # gross errors, marked invalid
    valid = np.ones((2, 8), bool)
    valid[0, :3] = False
    valid[1, 2:] = False                                 # only two points: cannot be aligned
    fit = similarity_transforms(src, dst, valid)
    np.testing.assert_allclose(fit.rotation[0], rot[0], atol=1e-10)
    assert fit.ok.tolist() == [True, False] and np.isnan(fit.rotation[1]).all()


def test_mirror_image_gets_a_proper_rotation_unless_reflections_are_allowed() -> None:
    src = np.random.default_rng(4).normal(0, 1, (1, 10, 3))
    mirrored = src * np.array([1.0, 1.0, -1.0])
    proper = similarity_transforms(src, mirrored)
    assert np.linalg.det(proper.rotation[0]) == pytest.approx(1.0)
    free = similarity_transforms(src, mirrored, allow_reflection=True)
    np.testing.assert_allclose(free.apply(src), mirrored, atol=1e-10)
    aligned, ok = procrustes_align(src[0], mirrored[0])
    assert ok.all() and np.abs(aligned - mirrored).max() > 1e-3


def test_rotations_round_trip_and_average() -> None:
    rvec = np.random.default_rng(5).normal(0, 1, (20, 3))
    rot = rodrigues_to_matrix(rvec)
    np.testing.assert_allclose(rot, Rotation.from_rotvec(rvec).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rodrigues_to_matrix(matrix_to_rodrigues(rot)), rot, atol=1e-10)
    np.testing.assert_allclose(rodrigues_to_matrix(np.zeros(3)), np.eye(3))
    base = rot[0]
    jitter = rodrigues_to_matrix(np.array([[0.01, 0, 0], [-0.01, 0, 0]])) @ base
    np.testing.assert_allclose(average_rotations(jitter), base, atol=1e-10)
    noisy = rot[1] + 0.01 * np.random.default_rng(6).normal(size=(3, 3))
    r = nearest_rotation(noisy)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_rotation_derivative_matches_finite_differences() -> None:
    w = np.array([[0.3, -0.7, 1.1]])
    v = np.array([0.2, 0.5, -0.4])
    rot = rodrigues_to_matrix(w)
    analytic = -rot[0] @ skew(v) @ rotation_derivative_factor(w, rot)[0]     # d(R v)/dw
    eps = 1e-7
    numeric = np.stack([(rodrigues_to_matrix(w[0] + eps * e) @ v - rodrigues_to_matrix(w[0] - eps * e) @ v) / (2 * eps)
                        for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(analytic, numeric, atol=1e-7)


def test_projection_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(7)
    rot = Rotation.random(3, random_state=1).as_matrix()
    t = np.array([[0, 0, 5.0]] * 3)
    x = rng.normal(0, 0.5, (3, 3))
    jac = world_point_jacobian(rot, to_camera(rot, t, x))                      # (3, 2, 3)
    eps = 1e-6
    for k in range(3):
        step = np.zeros(3)
        step[k] = eps
        hi = normalized_projection(to_camera(rot, t, x + step))[0]
        lo = normalized_projection(to_camera(rot, t, x - step))[0]
        np.testing.assert_allclose(jac[..., k], (hi - lo) / (2 * eps), atol=1e-7)
    assert normalized_projection_jacobian(np.zeros((2, 3))).shape == (2, 2, 3)
    grid = rng.normal(0, 1, (4, 5, 3))
    np.testing.assert_allclose(to_cameras(rot, t, grid), to_camera(rot[:, None, None], t[:, None, None], grid[None]),
                               atol=1e-12)


def test_robust_weights_are_the_loss_derivative_over_the_residual() -> None:
    e = np.linspace(0.1, 20, 50)
    eps = 1e-6
    huber_grad = (np.array([huber_cost(np.array([x + eps]), 3.0) for x in e])
                  - np.array([huber_cost(np.array([x - eps]), 3.0) for x in e])) / (2 * eps)
    np.testing.assert_allclose(huber_weights(e, 3.0), huber_grad / e, rtol=1e-5)
    cauchy_grad = (cauchy_cost((e + eps) ** 2, 2.0) - cauchy_cost((e - eps) ** 2, 2.0)) / (2 * eps)
    np.testing.assert_allclose(cauchy_weights(e**2, 2.0), cauchy_grad / (2 * e), rtol=1e-5)


def test_skeleton_helpers() -> None:
    bones = np.array([[0, 1], [1, 2]])
    pts = np.array([[[0, 0, 0], [0, 0, 1.0], [0, 2.0, 1.0]], [[0, 0, 0], [np.nan, 0, 0], [1, 1, 1]]])
    lengths = bone_lengths(pts, bones)
    np.testing.assert_allclose(lengths[0], [1.0, 2.0])
    assert np.isnan(lengths[1]).all()
    per_joint = bone_length_per_joint(lengths[0], bones, 3)
    assert np.isnan(per_joint[0]) and per_joint[1:].tolist() == [1.0, 2.0]
    assert scale_to_lengths(np.array([1.0, 2.0]), np.array([2.0, 4.0]), min_bones=2) == pytest.approx(2.0)
    assert np.isnan(scale_to_lengths(np.array([1.0, 2.0]), np.array([2.0, np.nan]), min_bones=2))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        bone_lengths(pts, [0, 1, 2])


def test_absent_fields_are_left_out_of_written_files_only_while_none(tmp_path) -> None:
    import dataclasses
    import json

    from posestudio.core.files import absent_field, plain, write_json

    @dataclasses.dataclass
    class Section:
        kept: float | None = None
        extra: float | None = absent_field()

    assert plain(Section(), drop_none=False) == {"kept": None}
    assert plain(Section(1.0, 2.0)) == {"kept": 1.0, "extra": 2.0}
    write_json(tmp_path / "r.json", Section(float("nan")))
    assert json.loads((tmp_path / "r.json").read_text()) == {"kept": None}
