"""BVH reading, writing, forward kinematics, and the Bandai -> H36M17 mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posestudio.core.bvh import BvhFormatError, BvhMotion, read_bvh, write_bvh
from posestudio.models.datasets.bandai import BANDAI_HEAD_TOP_OFFSET_M, bandai_to_h36m17
from posestudio.models.keypoints import H36M17

BANDAI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bandai_mocap_1"

TINY = """HIERARCHY
ROOT root
{
  OFFSET 5 5 5
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT arm
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
  JOINT leg
  {
    OFFSET 2 0 0
    CHANNELS 3 Xposition Yposition Zposition
    End Site
    {
      OFFSET 0 -4 0
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.04
0 0 0 0 0 0 0 0 0 2 0 0
1 2 3 90 0 0 0 0 0 2 0 0
0 0 0 90 90 0 0 0 0 2 0 0
0 0 0 0 0 0 0 0 90 0 0 7
"""


def _yup_cm_to_zup_m(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return 0.01 * np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY)
    return path


def test_tiny_known_positions(tiny: Path) -> None:
    m = read_bvh(tiny)
    assert m.names == ("root", "arm", "leg") and m.parents == (-1, 0, 0)
    assert m.channels[1] == ("Zrotation", "Xrotation", "Yrotation")
    assert m.n_frames == 4 and m.frame_time == pytest.approx(0.04) and m.fps == pytest.approx(25)
    assert m.end_site_parents == (1, 2)
    p = m.world_positions(include_end_sites=True)  # root, arm, leg, arm end, leg end
    # Hand-computed in the file's Y-up centimetres. Position channels replace the OFFSET (root at
    # the channel values, not 5 5 5 + them).
    expected_yup = np.array([
        [[0, 0, 0], [0, 10, 0], [2, 0, 0], [0, 20, 0], [2, -4, 0]],
        # root at (1, 2, 3) turned +90 deg about Z: x -> y, y -> -x
        [[1, 2, 3], [-9, 2, 3], [1, 4, 3], [-19, 2, 3], [5, 4, 3]],
        # R = Rz(90) @ Rx(90): (0, 10, 0) -> Rx -> (0, 0, 10) -> Rz -> (0, 0, 10). (The other order,
        # Rx @ Rz, would give (-10, 0, 0).) (2, 0, 0) -> (2, 0, 0) -> (0, 2, 0).
        [[0, 0, 0], [0, 0, 10], [0, 2, 0], [0, 0, 20], [0, 2, -4]],
        # arm's own Yrotation 90 turns its End Site (0, 10, 0) about Y: unchanged; leg at (0, 0, 7).
        [[0, 0, 0], [0, 10, 0], [0, 0, 7], [0, 20, 0], [0, -4, 7]],
    ], dtype=float)
    np.testing.assert_allclose(p, _yup_cm_to_zup_m(expected_yup), atol=1e-12)
    assert m.world_positions().shape == (4, 3, 3)


def test_rotation_order_matches_intrinsic_euler(tiny: Path) -> None:
    """Channel order Z X Y means R = Rz @ Rx @ Ry (scipy's intrinsic 'ZXY'); checked for random angles."""
    m = read_bvh(tiny)
    rng = np.random.default_rng(0)
    motion = np.zeros((50, m.motion.shape[1]))
    motion[:, 3:6] = rng.uniform(-180, 180, (50, 3))  # root Z, X, Y
    motion[:, 6:9] = rng.uniform(-180, 180, (50, 3))  # arm Z, X, Y
    motion[:, 9:12] = [2, 0, 0]
    mm = m.with_motion(motion)
    rot, _ = mm.global_transforms()
    r_root = Rotation.from_euler("ZXY", motion[:, 3:6], degrees=True).as_matrix()
    r_arm = Rotation.from_euler("ZXY", motion[:, 6:9], degrees=True).as_matrix()
    np.testing.assert_allclose(rot[:, 0], r_root, atol=1e-12)
    np.testing.assert_allclose(rot[:, 1], r_root @ r_arm, atol=1e-12)
    ends = mm.world_positions(include_end_sites=True)[:, 3]
    expected = np.einsum("fab,b->fa", r_root @ r_arm, [0, 10, 0]) + np.einsum("fab,b->fa", r_root, [0, 10, 0])
    np.testing.assert_allclose(ends, _yup_cm_to_zup_m(expected), atol=1e-12)


def test_round_trip(tiny: Path, tmp_path: Path) -> None:
    m = read_bvh(tiny)
    out = tmp_path / "again.bvh"
    write_bvh(out, m)
    m2 = read_bvh(out)
    _assert_same(m, m2)


def _assert_same(a: BvhMotion, b: BvhMotion) -> None:
    assert a.names == b.names and a.parents == b.parents and a.channels == b.channels
    assert a.frame_time == b.frame_time and a.end_site_parents == b.end_site_parents
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.motion, b.motion)
    np.testing.assert_array_equal(a.end_site_offsets, b.end_site_offsets)


def test_write_reorders_non_depth_first_skeleton(tmp_path: Path) -> None:
    """Joints given parents-first but not depth-first are written depth-first with their columns."""
    m = BvhMotion(names=("r", "a", "b", "a2"), parents=(-1, 0, 0, 1),
                  offsets=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.5]]),
                  channels=(("Xposition", "Yposition", "Zposition"), ("Xrotation",), ("Yrotation",), ("Zrotation",)),
                  frame_time=1 / 30, motion=np.array([[1.0, 2, 3, 30, 40, 50], [0, 0, 0, -10, 20, 90]]))
    write_bvh(tmp_path / "o.bvh", m)
    back = read_bvh(tmp_path / "o.bvh")
    assert back.names == ("r", "a", "a2", "b")
    order = [m.names.index(n) for n in back.names]
    np.testing.assert_allclose(back.world_positions(), m.world_positions()[:, order], atol=1e-15)


BAD_CASES = {
    "no_motion": (lambda t: t.split("MOTION")[0], None, "MOTION"),
    "bad_channel": (lambda t: t.replace("Zrotation Xrotation Yrotation\n    End", "Zrotation Xrotation Yspin\n    End"),
                    9, "Yspin"),
    "short_frame_line": (lambda t: t.replace("1 2 3 90 0 0 0 0 0 2 0 0", "1 2 3 90 0 0 0 0 0 2 0"), 29,
                         "expected 12 channel values"),
    "word_in_frame": (lambda t: t.replace("0 0 0 90 90 0", "0 0 zero 90 90 0"), 30, "'zero'"),
    "frame_count": (lambda t: t.replace("Frames: 4", "Frames: 5"), 31, "expected 5 frame lines"),
    "missing_brace": (lambda t: t.replace("  JOINT leg\n  {", "  JOINT leg\n"), 17, "expected '{'"),
    "bad_offset": (lambda t: t.replace("OFFSET 2 0 0", "OFFSET 2 0"), 18, "OFFSET z value"),
    "bad_frame_time": (lambda t: t.replace("Frame Time: 0.04", "Frame Time: fast"), 27, "frame time"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_malformed_files_name_file_and_line(case: str, tmp_path: Path) -> None:
    edit, line, what = BAD_CASES[case]
    path = tmp_path / f"{case}.bvh"
    path.write_text(edit(TINY))
    with pytest.raises(BvhFormatError) as info:
        read_bvh(path)
    msg = str(info.value)
    assert str(path) in msg and what in msg
    assert isinstance(info.value, ValueError)
    if line is not None:
        assert info.value.line == line and f"{path}:{line}:" in msg


# ---------------------------------------------------------------------------------------------
# Real data: Bandai Namco Research Motion Dataset 1


@pytest.fixture(scope="module")
def bandai() -> dict[str, BvhMotion]:
    if not BANDAI.is_dir():
        pytest.skip(f"real data absent: {BANDAI} (the shared data folder ../shared/data is not next to the repo)")
    return {p.stem: read_bvh(p) for p in sorted(BANDAI.glob("*.bvh"))}


@pytest.mark.realdata
def test_bandai_all_parse(bandai: dict[str, BvhMotion]) -> None:
    # The data README says 76 clips; the folder holds 75 .bvh files (plus LICENSE).
    assert len(bandai) >= 75
    for name, m in bandai.items():
        assert m.n_joints == 22, name
        assert m.frame_time == pytest.approx(1 / 30, rel=1e-5), name
        assert all(len(c) == 6 for c in m.channels), name
        assert m.n_frames >= 20, name
        # Non-root position channels repeat the OFFSET: replacing the offset by them keeps bones rigid.
        pos = m.motion.reshape(m.n_frames, m.n_joints, 6)[:, 2:, :3]
        np.testing.assert_allclose(pos, np.broadcast_to(m.offsets[2:], pos.shape), atol=1e-4, err_msg=name)


@pytest.mark.realdata
def test_bandai_round_trip(bandai: dict[str, BvhMotion], tmp_path: Path) -> None:
    m = bandai["dataset-1_walk_normal_001"]
    write_bvh(tmp_path / "w.bvh", m)
    _assert_same(m, read_bvh(tmp_path / "w.bvh"))


RIGID_BONES = [b for b in H36M17.bones if b not in {("spine", "thorax"), ("thorax", "l_shoulder"),
                                                    ("thorax", "r_shoulder")}]


@pytest.mark.realdata
def test_bandai_h36m17_plausible(bandai: dict[str, BvhMotion]) -> None:
    rigid = np.array([H36M17.bones.index(b) for b in RIGID_BONES])
    for name, m in bandai.items():
        p = bandai_to_h36m17(m)
        assert p.shape == (m.n_frames, 17, 3) and np.isfinite(p).all(), name
        at = lambda j: p[:, H36M17.index(j)]  # noqa: E731
        head, pelvis = at("head")[:, 2], at("pelvis")[:, 2]
        ankles = np.minimum(at("l_ankle")[:, 2], at("r_ankle")[:, 2])
        # Z up: head above pelvis above the ankles; actors' standing height in metres.
        assert 1.4 < np.median(head) < 1.75, (name, np.median(head))
        # (the dance clip bows head-down for a few frames)
        assert np.mean(head > pelvis) > 0.95 and np.median(pelvis - ankles) > 0.6, name
        # Feet on a floor at Z ~ 0 (ankle joint centres about 0.12 m up).
        assert 0.0 < ankles.min() < 0.15, (name, ankles.min())
        lengths = H36M17.bone_lengths(p)
        spread = lengths.max(axis=0) - lengths.min(axis=0)
        assert spread[rigid].max() < 1e-3, (name, spread)  # rigid skeleton: < 1 mm
        assert 0.35 < lengths[0, H36M17.bones.index(("l_hip", "l_knee"))] < 0.5, name
    walk = bandai_to_h36m17(bandai["dataset-1_walk_normal_001"])
    assert BANDAI_HEAD_TOP_OFFSET_M == pytest.approx(
        np.linalg.norm(walk[0, H36M17.index("head")] - walk[0, H36M17.index("neck")]))


@pytest.mark.realdata
def test_bandai_convention_keeps_feet_planted(bandai: dict[str, BvhMotion]) -> None:
    """The listed-order rotation convention gives a steady floor contact and an upright torso while
    walking; the reversed order (a common reader bug) would not (measured: foot-height std 62 mm,
    head only 0.17 m above the hips)."""
    m = bandai["dataset-1_walk_normal_001"]
    p = m.world_positions()
    toes = p[:, [m.index("Toes_L"), m.index("Toes_R")], 2].min(axis=1)
    assert toes.std() < 0.01 and 0.0 < toes.mean() < 0.08
    assert np.mean(p[:, m.index("Head"), 2] - p[:, m.index("Hips"), 2]) > 0.4
    # Left side is anatomically left (not mirrored): walking forward with Z up, left = up x forward.
    fwd = p[-1, m.index("Hips")] - p[0, m.index("Hips")]
    fwd[2] = 0
    left = p[:, m.index("UpperLeg_L")] - p[:, m.index("UpperLeg_R")]
    assert np.all(left @ np.cross([0, 0, 1.0], fwd / np.linalg.norm(fwd)) > 0.1)
