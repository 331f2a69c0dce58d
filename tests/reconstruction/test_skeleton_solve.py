"""Skeleton solving: 3D joints -> BVH -> read back -> forward kinematics gives the joints again."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.core.bvh import read_bvh, write_bvh
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.skeleton import JOINT_NAMES, SolveOptions, rotation_jumps_deg, solve_skeleton
from posestudio.reconstruction.skeleton.contacts import detect_contacts, foot_slide_mm
from posestudio.reconstruction.skeleton.definition import END_SITE_JOINTS
from posestudio.reconstruction.skeleton.solution import bvh_h36m_points
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections

from ..calibration.conftest import SHARED_DATA

MOCAP = SHARED_DATA / "bandai_mocap_1"
needs_mocap = pytest.mark.skipif(not sorted(MOCAP.glob("*.bvh")), reason=f"motion capture absent ({MOCAP})")

#: a walk (feet planted in turn), a dance (arms straight for long stretches, high kicks), a kick
CLIPS = ("walk_normal", "dance-short_normal", "kick_normal")


def _clip(fragment: str) -> tuple[np.ndarray, float, object]:
    path = next(f for f in sorted(MOCAP.glob("*.bvh")) if fragment in f.stem)
    motion = read_bvh(path)
    return bandai_to_h36m17(motion), motion.fps, motion


def _points(joints: np.ndarray, fps: float, confidence: np.ndarray | None = None) -> Points3D:
    conf = np.ones(joints.shape[:2]) if confidence is None else confidence
    return Points3D(joints, conf, list(H36M17.joints), fps)


def _bvh_joints(path, unit_m: float = 0.01, up: str = "y") -> np.ndarray:
    """H36M17 joints of a BVH file written by the exporter, read back by the independent reader."""
    return bvh_h36m_points(read_bvh(path, length_unit_m=unit_m, up_axis=up))


@needs_mocap
@pytest.mark.parametrize("fragment", CLIPS)
def test_bvh_round_trip_reproduces_the_motion_capture(tmp_path, fragment):
    joints, fps, _ = _clip(fragment)
    solution = solve_skeleton(_points(joints, fps))
    path = tmp_path / "take.bvh"
    write_bvh(path, solution.to_bvh())
    err = np.linalg.norm(_bvh_joints(path) - joints, axis=-1)
    assert err.mean() < 0.01, f"mean {1000 * err.mean():.1f} mm"
    assert np.percentile(err, 99) < 0.04


@needs_mocap
@pytest.mark.parametrize("fragment", CLIPS)
def test_rotations_never_jump_more_than_the_motion_capture_does(fragment):
    """No flips or 180-degree turns: each bone turns between frames no faster than the captured
    skeleton's fastest bone (feet excepted: a 17-joint body does not observe them)."""
    joints, fps, motion = _clip(fragment)
    solution = solve_skeleton(_points(joints, fps))
    rot, _ = motion.world_transforms()
    captured = rotation_jumps_deg(rot).max()
    ours = rotation_jumps_deg(solution.rotations)
    body = [i for i, n in enumerate(JOINT_NAMES) if "Foot" not in n and "Toe" not in n]
    assert ours[:, body].max() <= captured + 5.0
    assert ours.max() < 90.0
    channels = solution.to_bvh().motion
    assert np.abs(np.diff(channels[:, 3:], axis=0)).max() < 180.0  # Euler angles unwrapped


def test_straight_arm_swinging_overhead_does_not_spin():
    """A locked-straight arm swinging from down to overhead: the bone plane is undefined all along,
    yet the upper arm must not twist from frame to frame."""
    n = 90
    joints = np.zeros((n, 17, 3))
    pelvis = np.array([0.0, 0.0, 1.0])
    rest = {"pelvis": (0, 0, 0), "r_hip": (-0.1, 0, 0), "l_hip": (0.1, 0, 0), "r_knee": (-0.1, 0, -0.45),
            "l_knee": (0.1, 0, -0.45), "r_ankle": (-0.1, 0, -0.9), "l_ankle": (0.1, 0, -0.9), "spine": (0, 0, 0.25),
            "thorax": (0, 0, 0.5), "neck": (0, 0, 0.62), "head": (0, 0, 0.8), "r_shoulder": (-0.18, 0, 0.48),
            "l_shoulder": (0.18, 0, 0.48), "r_elbow": (-0.18, 0, 0.2), "r_wrist": (-0.18, 0, -0.05)}
    for name, xyz in rest.items():
        joints[:, H36M17.index(name)] = pelvis + np.asarray(xyz, float)
    angle = np.linspace(0.0, np.radians(170.0), n)  # left arm: down -> forward -> overhead, straight
    direction = np.stack([np.zeros(n), -np.sin(angle), -np.cos(angle)], axis=-1)
    shoulder = joints[:, H36M17.index("l_shoulder")]
    joints[:, H36M17.index("l_elbow")] = shoulder + 0.28 * direction
    joints[:, H36M17.index("l_wrist")] = shoulder + 0.53 * direction
    solution = solve_skeleton(_points(joints, 30.0))
    jumps = rotation_jumps_deg(solution.rotations)[:, JOINT_NAMES.index("LeftArm")]
    assert jumps.max() < 2.5 * np.degrees(angle[1] - angle[0])
    err = np.linalg.norm(solution.h36m_positions() - joints, axis=-1)
    assert err.max() < 0.005


def test_rest_pose_is_a_standard_t_pose():
    joints, _ = _walking()
    bvh = solve_skeleton(_points(joints, 30.0)).to_bvh()
    assert bvh.names[:5] == ("Hips", "Spine", "Spine1", "Neck", "Head")
    for side in ("Left", "Right"):
        for part in ("UpLeg", "Leg", "Foot", "ToeBase", "Shoulder", "Arm", "ForeArm", "Hand"):
            assert f"{side}{part}" in bvh.names
    rest = bvh.with_motion(np.zeros((1, bvh.motion.shape[1])))
    _, pos = rest.global_transforms()  # file axes: Y up, centimetres
    pos = pos[0]
    idx = bvh.index
    assert pos[idx("Head"), 1] > pos[idx("Neck"), 1] > pos[idx("Hips"), 1] > pos[idx("LeftLeg"), 1] > pos[idx("LeftFoot"), 1]
    for side, sign in (("Left", 1.0), ("Right", -1.0)):  # arms straight out along +-X, level
        arm = pos[idx(f"{side}Hand")] - pos[idx(f"{side}Arm")]
        assert sign * arm[0] > 40.0 and abs(arm[1]) < 1e-6 and abs(arm[2]) < 1e-6
        leg = pos[idx(f"{side}Foot")] - pos[idx(f"{side}UpLeg")]
        assert leg[1] < -70.0 and abs(leg[0]) < 1e-6 and abs(leg[2]) < 1e-6
        assert pos[idx(f"{side}ToeBase"), 2] > pos[idx(f"{side}Foot"), 2]  # feet point forward (+Z)
    bones = solve_skeleton(_points(joints, 30.0)).actor.bone_lengths
    assert bones["l_thigh"] == bones["r_thigh"] and bones["l_forearm"] == bones["r_forearm"]


def _walking() -> tuple[np.ndarray, float]:
    from posestudio.synthetic.body_motion import walking_body

    return walking_body(frames=120, fps=30.0), 30.0


def test_z_up_metres_and_frame_rate_options(tmp_path):
    joints, fps = _walking()
    solution = solve_skeleton(_points(joints, fps))
    write_bvh(tmp_path / "z.bvh", solution.to_bvh(up="z", units="m"))
    back = _bvh_joints(tmp_path / "z.bvh", unit_m=1.0, up="z")
    assert np.linalg.norm(back - joints, axis=-1).mean() < 0.01
    assert read_bvh(tmp_path / "z.bvh", length_unit_m=1.0, up_axis="z").offsets[JOINT_NAMES.index("Spine1"), 2] > 0
    double = solution.to_bvh(fps=60.0)
    assert double.n_frames == 2 * len(joints) - 1 and abs(double.frame_time - 1 / 60) < 1e-12
    write_bvh(tmp_path / "60.bvh", double)
    err = np.linalg.norm(_bvh_joints(tmp_path / "60.bvh")[::2] - joints, axis=-1)
    assert err.mean() < 0.01


def test_low_confidence_joints_are_followed_loosely_and_gaps_bridged():
    joints, fps = _walking()
    noisy = joints.copy()
    conf = np.ones(joints.shape[:2])
    wrist = H36M17.index("l_wrist")
    rng = np.random.default_rng(0)
    spikes = rng.choice(len(joints), 12, replace=False)
    noisy[spikes, wrist] += rng.normal(0.0, 0.08, (12, 3))  # 8 cm spikes the reconstruction doubted
    conf[spikes, wrist] = 0.05
    noisy[40:52, H36M17.index("r_elbow")] = np.nan  # a gap
    solution = solve_skeleton(_points(noisy, fps, conf))
    out = solution.h36m_positions()
    assert np.isfinite(out).all()
    spike_err = np.linalg.norm(out[spikes, wrist] - joints[spikes, wrist], axis=-1)
    raw_err = np.linalg.norm(noisy[spikes, wrist] - joints[spikes, wrist], axis=-1)
    assert spike_err.mean() < 0.3 * raw_err.mean()
    confident = np.setdiff1d(np.arange(len(joints)), spikes)
    assert np.linalg.norm(out[confident, wrist] - joints[confident, wrist], axis=-1).mean() < 0.01
    gap_err = np.linalg.norm(out[40:52, H36M17.index("r_elbow")] - joints[40:52, H36M17.index("r_elbow")], axis=-1)
    assert gap_err.max() < 0.05


@needs_mocap
def test_planted_feet_do_not_slide():
    joints, fps, _ = _clip("walk_normal")
    rng = np.random.default_rng(1)
    jittered = joints.copy()
    for name in ("l_ankle", "r_ankle"):  # 3 mm of reconstruction jitter on the ankles
        jittered[:, H36M17.index(name)] += rng.normal(0.0, 0.003, (len(joints), 3))
    solution = solve_skeleton(_points(jittered, fps))
    pos = solution.joint_positions()
    for k, name in enumerate(("LeftFoot", "RightFoot")):
        planted = solution.contacts[:, k]
        assert planted.mean() > 0.2, "a walk keeps each foot planted a good part of the time"
        ankle = pos[:, JOINT_NAMES.index(name)]
        assert foot_slide_mm(ankle, planted) < 0.5
        assert solution.foot_slide_input_mm[k] > 2.0
    unpinned = solve_skeleton(_points(jittered, fps), SolveOptions(pin_feet=False)).joint_positions()
    assert foot_slide_mm(unpinned[:, JOINT_NAMES.index("LeftFoot")], solution.contacts[:, 0]) > 1.0


def test_contacts_need_a_still_low_foot():
    t = np.arange(60) / 30.0
    ankle = np.stack([t * 1.2, 0.08 + 0.0 * t, np.zeros_like(t)], axis=-1)  # sliding at 1.2 m/s
    ankle[20:40, 0] = ankle[20, 0]  # still for 20 frames
    planted = detect_contacts(ankle, 30.0)
    assert planted[22:38].all() and not planted[:15].any() and not planted[45:].any()


def test_reconstructed_take_round_trips_within_a_centimetre(tmp_path):
    """A take reconstructed from realistic 2D (correlated jitter, biases, swaps, outliers): its
    BVH reproduces the reconstruction's joints within 1 cm on average."""
    joints, fps = _walking()
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    views = simulate_detections(rig, joints, DetectorErrors.realistic(3))
    result = reconstruct(rig, Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), fps))
    solution = solve_skeleton(result.points)
    write_bvh(tmp_path / "take.bvh", solution.to_bvh())
    back = _bvh_joints(tmp_path / "take.bvh")
    ok = np.isfinite(result.points.points3d).all(axis=-1)
    err = np.linalg.norm(back - result.points.points3d, axis=-1)[ok]
    assert err.mean() < 0.01, f"{1000 * err.mean():.1f} mm"
    assert len(END_SITE_JOINTS) == 5


def test_bad_input_is_refused_clearly():
    joints, fps = _walking()
    with pytest.raises(InputError, match="needs the H36M17 joints"):
        solve_skeleton(Points3D(joints[:, :5], np.ones((len(joints), 5)), list(H36M17.joints[:5]), fps))
    never = joints.copy()
    never[:, H36M17.index("l_knee")] = np.nan
    with pytest.raises(InputError, match="l_knee"):
        solve_skeleton(_points(never, fps))
    with pytest.raises(InputError, match="frames > 0"):
        solve_skeleton(_points(joints[:0], fps))
