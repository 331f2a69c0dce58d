"""Keypoint layouts and the COCO17 / BlazePose33 -> H36M17 mappings."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.models.keypoints import (
    BLAZEPOSE33,
    COCO17,
    H36M17,
    HEAD_TOP_EXTENSION,
    LAYOUTS,
    NECK_FRACTION,
    TO_H36M17,
    KeypointLayout,
    blazepose33_to_h36m17,
    coco17_to_h36m17,
    get_layout,
    layout_from_joint_names,
)


def test_h36m17_joints_and_bones() -> None:
    assert H36M17.joints == ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
                             "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
                             "r_elbow", "r_wrist")
    assert len(H36M17.bones) == 16
    assert H36M17.is_tree
    parents = H36M17.parents
    assert parents[H36M17.index("pelvis")] == -1
    assert parents[H36M17.index("head")] == H36M17.index("neck")
    assert parents[H36M17.index("l_shoulder")] == H36M17.index("thorax")
    assert parents[H36M17.index("r_ankle")] == H36M17.index("r_knee")
    assert H36M17.bone_indices.shape == (16, 2)
    assert H36M17.bone_indices.dtype == np.int64


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_layouts_consistent(layout: KeypointLayout) -> None:
    assert len(set(layout.joints)) == len(layout.joints)
    b = layout.bone_indices
    assert b.min() >= 0 and b.max() < layout.n_joints
    assert np.all(b[:, 0] != b[:, 1])
    for (p, c), (ip, ic) in zip(layout.bones, b):
        assert layout.joints[ip] == p and layout.joints[ic] == c
    assert len(layout.topological_order()) == layout.n_joints or not layout.is_tree
    assert get_layout(layout.name.upper()) is layout


def test_detector_layouts() -> None:
    assert COCO17.n_joints == 17 and COCO17.index("nose") == 0 and COCO17.index("right_ankle") == 16
    assert BLAZEPOSE33.n_joints == 33
    assert BLAZEPOSE33.index("nose") == 0 and BLAZEPOSE33.index("left_shoulder") == 11
    assert BLAZEPOSE33.index("left_hip") == 23 and BLAZEPOSE33.index("right_foot_index") == 32
    assert not COCO17.is_tree  # COCO's drawing links have cycles
    with pytest.raises(ValueError, match="not a tree"):
        _ = COCO17.parents


def test_index_errors() -> None:
    with pytest.raises(KeyError, match="chin"):
        H36M17.index("chin")
    with pytest.raises(KeyError, match=r"\['chin'\]"):
        H36M17.indices(["pelvis", "chin"])
    np.testing.assert_array_equal(H36M17.indices(["head", "pelvis"]), [10, 0])
    with pytest.raises(ValueError, match="unknown joints"):
        KeypointLayout("bad", ("a", "b"), (("a", "c"),))
    with pytest.raises(KeyError, match="known"):
        get_layout("openpose25")


def test_layout_from_joint_names() -> None:
    assert layout_from_joint_names(list(COCO17.joints)) is COCO17
    shuffled = list(reversed(H36M17.joints))
    assert layout_from_joint_names([n.upper() for n in shuffled]) is H36M17
    assert layout_from_joint_names(BLAZEPOSE33.joints) is BLAZEPOSE33
    names = list(COCO17.joints[:-1]) + ["tail"]
    with pytest.raises(ValueError, match=r"coco17.*'tail'.*'right_ankle'"):
        layout_from_joint_names(names)


def _random_kp(layout: KeypointLayout, shape: tuple[int, ...], dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1000, shape + (layout.n_joints, dim))
    conf = rng.uniform(0.05, 1.0, shape + (layout.n_joints, 1))
    return np.concatenate([coords, conf], axis=-1)


def _expected(get) -> dict[str, np.ndarray]:
    """Derived H36M17 joints from a getter of source joints, written out independently."""
    t = (get("left_shoulder") + get("right_shoulder")) / 2
    e = (get("left_ear") + get("right_ear")) / 2
    pelvis = (get("left_hip") + get("right_hip")) / 2
    return {"pelvis": pelvis, "thorax": t, "spine": (pelvis + t) / 2, "neck": t + NECK_FRACTION * (e - t),
            "head": e + HEAD_TOP_EXTENSION * (e - t)}


@pytest.mark.parametrize("dim", [2, 3])
def test_coco_mapping_positions_and_confidence(dim: int) -> None:
    kp = _random_kp(COCO17, (2, 3), dim)
    out = coco17_to_h36m17(kp)
    assert out.shape == (2, 3, 17, dim + 1)
    get = lambda n: kp[..., COCO17.index(n), :dim]  # noqa: E731
    conf = lambda *ns: np.min([kp[..., COCO17.index(n), dim] for n in ns], axis=0)  # noqa: E731
    for name, pos in _expected(get).items():
        np.testing.assert_allclose(out[..., H36M17.index(name), :dim], pos, rtol=1e-12, atol=1e-9)
    sh, ears, hips = ("left_shoulder", "right_shoulder"), ("left_ear", "right_ear"), ("left_hip", "right_hip")
    expected_conf = {"pelvis": conf(*hips), "thorax": conf(*sh), "spine": conf(*hips, *sh),
                     "neck": conf(*sh, *ears), "head": conf(*sh, *ears)}
    for name, c in expected_conf.items():
        np.testing.assert_array_equal(out[..., H36M17.index(name), dim], c)
    for h36, coco in [("r_hip", "right_hip"), ("l_knee", "left_knee"), ("r_ankle", "right_ankle"),
                      ("l_shoulder", "left_shoulder"), ("r_elbow", "right_elbow"), ("l_wrist", "left_wrist")]:
        np.testing.assert_array_equal(out[..., H36M17.index(h36), :], kp[..., COCO17.index(coco), :])


def test_mapping_known_geometry() -> None:
    """An upright 2D figure (image y down): derived joints land where the docstring says."""
    kp = np.full((17, 3), np.nan)
    pts = {"left_shoulder": (120, 100), "right_shoulder": (80, 100), "left_ear": (108, 60), "right_ear": (92, 60),
           "left_hip": (110, 200), "right_hip": (90, 200), "nose": (100, 62)}
    for n, xy in pts.items():
        kp[COCO17.index(n)] = (*xy, 0.9)
    kp[COCO17.index("left_ear"), 2] = 0.4
    out = coco17_to_h36m17(kp)
    at = lambda n: out[H36M17.index(n)]  # noqa: E731
    np.testing.assert_allclose(at("pelvis"), (100, 200, 0.9))
    np.testing.assert_allclose(at("thorax"), (100, 100, 0.9))
    np.testing.assert_allclose(at("spine"), (100, 150, 0.9))
    np.testing.assert_allclose(at("neck"), (100, 80, 0.4))  # halfway shoulders -> ears, min conf
    np.testing.assert_allclose(at("head"), (100, 36, 0.4))  # ears + 0.6 * 40 px upward
    assert np.isnan(at("l_knee")).all()


def test_nan_propagation() -> None:
    kp = _random_kp(COCO17, (4,), 2, seed=3)
    kp[0, COCO17.index("left_ear"), 0] = np.nan  # one coordinate of an ear
    kp[1, COCO17.index("right_hip"), 2] = np.nan  # a hip's confidence
    kp[2, COCO17.index("left_knee"), :] = np.nan  # a directly copied joint
    out = coco17_to_h36m17(kp)
    assert np.isnan(out[0, H36M17.indices(["neck", "head"])]).all()
    assert np.isfinite(out[0, H36M17.indices(["pelvis", "thorax", "spine"])]).all()
    assert np.isnan(out[1, H36M17.indices(["pelvis", "spine"])]).all()
    assert np.isfinite(out[1, H36M17.indices(["thorax", "neck", "head"])]).all()
    assert np.isnan(out[2, H36M17.index("l_knee")]).all()
    assert np.isfinite(out[2, H36M17.index("l_hip")]).all()
    assert np.isfinite(out[3]).all()


def test_blazepose_matches_coco_on_shared_joints() -> None:
    coco = _random_kp(COCO17, (5,), 3, seed=7)
    bp = _random_kp(BLAZEPOSE33, (5,), 3, seed=8)
    bp[..., BLAZEPOSE33.indices(COCO17.joints), :] = coco  # same named points
    np.testing.assert_allclose(blazepose33_to_h36m17(bp), coco17_to_h36m17(coco), rtol=0, atol=1e-12)
    assert TO_H36M17["blazepose33"] is blazepose33_to_h36m17


def test_mapping_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, D \+ 1\)"):
        coco17_to_h36m17(np.zeros((33, 3)))
    with pytest.raises(ValueError, match="33"):
        blazepose33_to_h36m17(np.zeros((17, 3)))
