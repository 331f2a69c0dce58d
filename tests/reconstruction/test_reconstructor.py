"""The streaming Reconstructor: one frame in, one skeleton out; the live take is the same computation."""

from __future__ import annotations

import json
import types
from collections import deque

import numpy as np
import pytest

from posestudio.core.errors import InputError
from posestudio.core.files import json_text
from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.skeleton import bone_length_per_joint, bone_lengths
from posestudio.models.keypoints import COCO17, H36M17
from posestudio.reconstruction.identity import IdentityTracker, exclude_other_people
from posestudio.reconstruction.pipeline import CARRIED_CONFIDENCE, PRIOR_CONFIDENCE, ReconstructionOptions, reconstruct
from posestudio.reconstruction.ray_carry import propagate_along_rays
from posestudio.reconstruction.reconstructor import CausalRayCarry, Reconstructor
from posestudio.reconstruction.triangulation import triangulate_robust
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

LIVE = ReconstructionOptions(live=True)


def _leaves(value, key: str = "") -> dict:
    """A nested dict flattened to ``{"a.b": leaf}``."""
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _leaves(item, f"{key}.{name}" if key else name).items()}
    return {key: value}


@pytest.fixture(scope="module")
def walk_out():
    """A performer walking out of the rig's shared view: carrying along rays and the prior both work."""
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    body = walking_body(100, start=(-0.3, 0.35), speed_m_s=1.3, heading_deg=20)
    views = simulate_detections(rig, body, DetectorErrors(noise_px=3.0, outlier_rate=0.05, occlusion_rate=0.05, seed=1))
    take = Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0)
    return rig, body, take, reconstruct(rig, take, LIVE)


def test_pushing_frames_one_at_a_time_is_the_live_take(walk_out) -> None:
    rig, _, take, batch = walk_out
    stream = Reconstructor(rig, 30.0, options=LIVE)
    skeletons = [stream.push(take.keypoints[:, f]) for f in range(take.n_frames)]
    assert [s.frame for s in skeletons] == list(range(take.n_frames))
    # the same computation; the take's frames go through the per-frame stages in chunks, the
    # report's sums too (summed in another order: equal to the last few bits)
    np.testing.assert_allclose(np.stack([s.points for s in skeletons]), batch.points.points3d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.stack([s.confidence for s in skeletons]), batch.points.confidence, rtol=0, atol=1e-12)
    pushed, whole = _leaves(json.loads(json_text(stream.report()))), _leaves(json.loads(json_text(batch.report)))
    assert pushed.keys() == whole.keys()
    for key, value in pushed.items():
        assert value == (pytest.approx(whole[key], rel=1e-12) if isinstance(value, float) else whole[key]), key
    conf = batch.points.confidence                     # the take exercises carrying and the prior
    assert np.isclose(conf, CARRIED_CONFIDENCE).sum() > 20 and np.isclose(conf, PRIOR_CONFIDENCE).sum() > 10


@pytest.mark.parametrize("refine", [True, False], ids=["refined", "one euro"])
def test_live_output_never_depends_on_later_frames(walk_out, refine) -> None:
    rig, _, take, batch = walk_out
    opts = ReconstructionOptions(live=True, refine=refine)
    kp = take.keypoints.copy()
    rng = np.random.default_rng(7)
    kp[:, 50:, :, :2] += rng.normal(0.0, 40.0, kp[:, 50:, :, :2].shape)      # the future goes wrong
    kp[1, 60:70] = np.nan
    changed = reconstruct(rig, Keypoints2D(kp, take.camera_names, take.joint_names, 30.0), opts).points
    same = batch.points if refine else reconstruct(rig, take, opts).points
    np.testing.assert_array_equal(changed.points3d[:50], same.points3d[:50])
    np.testing.assert_array_equal(changed.confidence[:50], same.confidence[:50])
    assert not np.allclose(changed.points3d[50:], same.points3d[50:], equal_nan=True)


def test_streaming_carry_is_the_whole_take_carry() -> None:
    """Joints carried frame by frame along rays equal the whole-take causal carrying, gaps of
    parents and children overlapping, some longer than the carrying may reach."""
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    body = walking_body(90, start=(-0.6, 0.0), speed_m_s=1.0, heading_deg=10)
    xy = rig.undistort(rig.project(body))
    directions = rig.ray_directions(xy)                                                  # (C, F, 17, 3)
    usable = np.ones(xy.shape[:-1], bool)
    points = body + np.random.default_rng(3).normal(0.0, 0.004, body.shape)
    for joint, frames, seen_by in (("l_wrist", slice(10, 45), 0), ("l_elbow", slice(20, 32), 0),
                                   ("r_knee", slice(50, 85), 2), ("r_ankle", slice(55, 60), 2),
                                   ("head", slice(30, 40), None)):
        j = H36M17.index(joint)
        points[frames, j] = np.nan
        usable[:, frames, j] = False
        if seen_by is not None:
            usable[seen_by, frames, j] = True
    lengths = bone_length_per_joint(bone_lengths(body[:1], H36M17.bone_indices)[0], H36M17.bone_indices, 17)
    track = points[:, H36M17.index("pelvis")]
    whole, whole_carried = propagate_along_rays(points, H36M17.parents, H36M17.topological_order(), lengths,
                                                rig.centers, directions, usable, track, causal=True, max_frames=20)
    carry = CausalRayCarry(rig.centers, 20, 0.15)
    steps = [carry.step(points[f], usable[:, f], directions[:, f], lengths, track[f]) for f in range(len(points))]
    np.testing.assert_array_equal(np.stack([s[1] for s in steps]), whole_carried)
    np.testing.assert_allclose(np.stack([s[0] for s in steps]), whole, atol=1e-12)
    assert whole_carried.sum() > 40 and np.isnan(whole).any()       # carried, and not past max_frames


@pytest.mark.parametrize("chunk", [1, 17, 120])
def test_identity_tracker_in_chunks_is_exclude_other_people(chunk) -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    performer = walking_body(120, start=(-1.0, -0.5), speed_m_s=0.6, heading_deg=20)
    bystander = walking_body(120, start=(0.8, 0.6), speed_m_s=0.5, heading_deg=200, stride_hz=1.1)
    kp = simulate_detections(rig, performer, DetectorErrors(seed=1)).keypoints
    kp[[0, 1], 30:80] = simulate_detections(rig, bystander, DetectorErrors(seed=2)).keypoints[[0, 1], 30:80]
    points = triangulate_robust(rig, kp).points
    cleaned, excluded = exclude_other_people(rig, kp, points, 30.0)
    tracker = IdentityTracker(rig, 30.0)
    parts = [tracker.update(kp[:, s:s + chunk], points[s:s + chunk]) for s in range(0, 120, chunk)]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts], axis=1), excluded)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts], axis=1), cleaned)
    assert excluded[[0, 1], 30:80].mean() > 0.7


def _array_bytes(obj, seen: set[int] | None = None) -> int:
    """Bytes of every numpy array reachable from ``obj`` through containers and attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple, deque, set)):
        items = list(obj)
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    else:
        return 0
    return sum(_array_bytes(item, seen) for item in items)


def test_a_stream_holds_a_fixed_amount_of_state(walk_out) -> None:
    rig, _, take, _ = walk_out
    stream = Reconstructor(rig, 30.0, options=LIVE)
    kp = np.concatenate([take.keypoints] * 2, axis=1)                      # a take that loops, 200 frames
    held = []
    for f in range(kp.shape[1]):
        stream.push(kp[:, f])
        held.append(_array_bytes(stream))
    # every buffer is full after the torso anchors' 1.5 s; then only the carried joints' states vary
    # (at most one (17, 3) state per joint); nothing grows with the frames pushed
    late = np.array(held[60:])
    assert late.max() - late.min() <= 17 * 17 * 3 * 8, (late.min(), late.max())
    assert max(held[150:]) <= max(held[60:150])
    assert stream.report().frames == 200


def test_frames_in_another_layout_and_camera_order() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    body = walking_body(20, start=(-0.3, 0.0))
    kp = simulate_detections(rig, body, DetectorErrors(noise_px=1.0, outlier_rate=0.0, occlusion_rate=0.0)).keypoints
    coco = np.full(kp.shape[:2] + (17, 3), np.nan)
    for name, h36m in (("left_hip", "l_hip"), ("right_hip", "r_hip"), ("left_knee", "l_knee"),
                       ("right_knee", "r_knee"), ("left_ankle", "l_ankle"), ("right_ankle", "r_ankle")):
        coco[..., COCO17.index(name), :] = kp[..., H36M17.index(h36m), :]
    order = [2, 0, 3, 1]
    stream = Reconstructor(rig, 30.0, [rig.names[c] for c in order], list(COCO17.joints),
                           ReconstructionOptions(live=True, prior=None))
    skeleton = stream.push(coco[order, 0])
    assert skeleton.points.shape == (17, 3) and skeleton.confidence.shape == (17,)
    knee = H36M17.index("l_knee")
    assert np.linalg.norm(skeleton.points[knee] - body[0, knee]) < 0.02
    assert np.isnan(skeleton.points[H36M17.index("head")]).all() and skeleton.confidence[H36M17.index("head")] == 0


def test_bad_frames_and_takes_are_named() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    stream = Reconstructor(rig, 30.0, options=LIVE, source="camera feed")
    with pytest.raises(InputError, match=r"camera feed: frame 0 has shape \(4, 16, 3\); expected"):
        stream.push(np.zeros((4, 16, 3)))
    with pytest.raises(InputError, match=r"cameras \['camX'\] are not in the rig"):
        Reconstructor(rig, 30.0, ["cam0", "camX"], options=LIVE)
    with pytest.raises(InputError, match="frame rate must be a positive number"):
        Reconstructor(rig, 0.0, options=LIVE)
    other = Keypoints2D(np.zeros((4, 3, 17, 3)), rig.names, list(H36M17.joints), 60.0)
    with pytest.raises(InputError, match="frame rate differ"):
        stream.run(other)
