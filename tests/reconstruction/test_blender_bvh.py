"""Our BVH in Blender: Blender's own importer, headless, reproduces the 3D joints upright and to scale.

Needs Debian's ``blender`` (``make bench`` installs it; ``apt-get install blender``); skipped with
that reason where it is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.bvh import read_bvh, write_bvh
from posestudio.core.keypoints_file import Points3D
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.skeleton import JOINT_NAMES, solve_skeleton
from posestudio.reconstruction.skeleton.blender import BlenderError, blender_joints, find_blender
from posestudio.reconstruction.skeleton.definition import observed_pairs

from ..calibration.conftest import SHARED_DATA

MOCAP = SHARED_DATA / "bandai_mocap_1"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_blender() is None,
                                 reason="Blender is not installed (apt-get install blender; make bench installs it)")]


def _blender_h36m(arm) -> np.ndarray:
    out = np.full((arm.heads.shape[0], 17, 3), np.nan)
    sk, h = observed_pairs(H36M17.joints)
    out[:, h] = np.stack([arm.joint(JOINT_NAMES[i]) for i in sk], axis=1)
    out[:, H36M17.index("head")] = arm.tails[:, arm.names.index("Head")]  # the Head bone ends at its End Site
    return out


def _check(joints: np.ndarray, fps: float, tmp_path, units: str = "cm") -> None:
    solution = solve_skeleton(Points3D(joints, np.ones(joints.shape[:2]), list(H36M17.joints), fps))
    path = tmp_path / "take.bvh"
    write_bvh(path, solution.to_bvh(units=units))
    arm = blender_joints(path, metres_per_unit={"cm": 0.01, "m": 1.0}[units], fbx=tmp_path / "take.fbx")
    assert arm.names == JOINT_NAMES
    assert arm.heads.shape[0] == len(joints) and abs(arm.fps - fps) < 0.01
    ours = _blender_h36m(arm)
    err = np.linalg.norm(ours - joints, axis=-1)
    assert err.mean() < 0.02, f"Blender's armature is {1000 * err.mean():.1f} mm from the 3D joints"
    # Upright and to scale: Z is up in Blender, the head above the hips above the ankles in every
    # frame, and the body as tall as the 3D says.
    z = ours[..., 2]
    assert (z[:, H36M17.index("head")] > z[:, H36M17.index("pelvis")]).all()
    assert (z[:, H36M17.index("pelvis")] > z[:, [H36M17.index("l_ankle"), H36M17.index("r_ankle")]].max(axis=1)).all()
    height_3d = np.median(joints[:, H36M17.index("head"), 2] - joints[:, H36M17.index("l_ankle"), 2])
    height_bl = np.median(z[:, H36M17.index("head")] - z[:, H36M17.index("l_ankle")])
    assert abs(height_bl / height_3d - 1.0) < 0.03
    assert (tmp_path / "take.fbx").stat().st_size > 10_000


@pytest.mark.skipif(not sorted(MOCAP.glob("*walk_normal*.bvh")), reason=f"motion capture absent ({MOCAP})")
def test_blender_imports_our_bvh_of_captured_motion(tmp_path):
    path = sorted(MOCAP.glob("*walk_normal*.bvh"))[0]
    motion = read_bvh(path)
    _check(bandai_to_h36m17(motion), motion.fps, tmp_path)


def test_blender_imports_our_bvh_in_metres(tmp_path):
    from posestudio.synthetic.body_motion import walking_body

    _check(walking_body(frames=60, fps=30.0), 30.0, tmp_path, units="m")


def test_blender_failure_is_reported(tmp_path):
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n")
    with pytest.raises(BlenderError, match="broken.bvh"):
        blender_joints(bad)


def test_export_command_writes_fbx_through_blender(tmp_path):
    from posestudio.cli import main
    from posestudio.core.keypoints_file import write_points3d
    from posestudio.synthetic.body_motion import walking_body

    joints = walking_body(frames=30, fps=30.0)
    (tmp_path / "take").mkdir()
    write_points3d(tmp_path / "take" / "points3d.npz",
                   Points3D(joints, np.ones(joints.shape[:2]), list(H36M17.joints), 30.0))
    assert main(["export", str(tmp_path / "take"), "--fbx", str(tmp_path / "take.fbx"),
                 "--bvh", str(tmp_path / "take.bvh")]) == 0
    assert (tmp_path / "take.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
