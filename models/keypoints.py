"""Keypoint layouts (joint names and bones) and mappings between them.

A :class:`KeypointLayout` names the joints of a keypoint array's ``joints`` axis and the bones
between them. Arrays follow the studio conventions: 2D keypoints ``(..., J, 3)`` = x, y (pixels),
confidence; 3D points ``(..., J, 3)`` in metres; NaN where a joint is absent.

Layouts:

* :data:`H36M17` — the Human3.6M 17-joint set, the studio's 3D skeleton.
* :data:`COCO17` — the COCO person keypoints (most 2D detectors).
* :data:`BLAZEPOSE33` — MediaPipe BlazePose's 33 landmarks, in MediaPipe's order.

What the H36M17 joints mean in this studio (every source is mapped to these points, so that models
trained on one source, e.g. the Bandai motion capture, see the same points from another, e.g. a COCO
detector):

* ``pelvis``: midpoint of the two hip joint centres;
* ``thorax``: base of the neck, between the shoulders;
* ``spine``: on the trunk, about midway between pelvis and thorax;
* ``neck``: upper neck, about chin height (Human3.6M's "neck/nose" joint lies at this height);
* ``head``: top of the head (vertex);
* the limb joints: hip, knee and ankle; shoulder (glenohumeral centre), elbow and wrist.

2D mappings (:func:`coco17_to_h36m17`, :func:`blazepose33_to_h36m17`) derive the trunk and head
joints from the detected ones with fixed linear formulas (written out in each function's docstring).
A derived joint's confidence is the minimum of its sources' confidences, and the whole derived joint
(coordinates and confidence) is NaN where any value of any source is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import KeypointFileError, Keypoints2D
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_lengths


@dataclass(frozen=True)
class KeypointLayout:
    """Names of a keypoint set's joints, in array order, and its bones.

    Attributes:
        name: registry name, e.g. ``"h36m17"``.
        joints: joint names; position ``i`` names index ``i`` of an array's joints axis.
        bones: ``(parent, child)`` joint-name pairs (for a tree: parent nearer the root; for
            drawing-only layouts such as COCO17 the pairs may form cycles).
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            dup = sorted({j for j in self.joints if self.joints.count(j) > 1})
            raise ValueError(f"layout {self.name!r}: duplicate joint names {dup}")
        unknown = sorted({j for b in self.bones for j in b} - set(self.joints))
        if unknown:
            raise ValueError(f"layout {self.name!r}: bones name unknown joints {unknown}")

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def n_joints(self) -> int:
        """Number of joints J."""
        return len(self.joints)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {j: i for i, j in enumerate(self.joints)}

    def index(self, name: str) -> int:
        """Index of joint ``name``; KeyError naming the layout's joints if unknown."""
        try:
            return self._lookup[name]
        except KeyError:
            raise KeyError(f"layout {self.name!r} has no joint {name!r}; joints: {', '.join(self.joints)}") from None

    def indices(self, names: Iterable[str]) -> NDArray[np.int64]:
        """``(N,)`` indices of ``names``; KeyError naming every unknown one."""
        names = list(names)
        missing = [n for n in names if n not in self._lookup]
        if missing:
            raise KeyError(f"layout {self.name!r} has no joints {missing}; joints: {', '.join(self.joints)}")
        return np.array([self._lookup[n] for n in names], dtype=np.int64)

    @cached_property
    def bone_indices(self) -> NDArray[np.int64]:
        """``(B, 2)`` joint indices of the bones, ``[:, 0]`` parent, ``[:, 1]`` child."""
        return np.array([[self._lookup[a], self._lookup[b]] for a, b in self.bones], dtype=np.int64).reshape(-1, 2)

    @property
    def is_tree(self) -> bool:
        """True if the bones form one tree over all joints (J - 1 bones, connected, one parent each)."""
        if len(self.bones) != self.n_joints - 1:
            return False
        children = self.bone_indices[:, 1]
        if len(set(children.tolist())) != len(children):
            return False
        roots = set(range(self.n_joints)) - set(children.tolist())
        if len(roots) != 1:
            return False
        return len(self.topological_order()) == self.n_joints

    def topological_order(self) -> list[int]:
        """Joint indices reachable from the root(s), parents before children (breadth first)."""
        kids: dict[int, list[int]] = {}
        for p, c in self.bone_indices.tolist():
            kids.setdefault(p, []).append(c)
        has_parent = set(self.bone_indices[:, 1].tolist())
        order = [j for j in range(self.n_joints) if j not in has_parent]
        seen = set(order)
        i = 0
        while i < len(order):
            for c in kids.get(order[i], []):
                if c not in seen:
                    seen.add(c)
                    order.append(c)
            i += 1
        return order

    @property
    def parents(self) -> NDArray[np.int64]:
        """``(J,)`` parent index of each joint, -1 for the root. Only for tree layouts."""
        if not self.is_tree:
            raise ValueError(f"layout {self.name!r} is not a tree; it has no parent array")
        out = np.full(self.n_joints, -1, dtype=np.int64)
        out[self.bone_indices[:, 1]] = self.bone_indices[:, 0]
        return out

    def bone_lengths(self, points: FloatArray) -> FloatArray:
        """``(..., B)`` Euclidean bone lengths of ``(..., J, D)`` points (NaN where a joint is NaN)."""
        return bone_lengths(points, self.bone_indices)


H36M17 = KeypointLayout(
    name="h36m17",
    joints=("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "neck",
            "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"),
    bones=(("pelvis", "r_hip"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"),
           ("pelvis", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
           ("pelvis", "spine"), ("spine", "thorax"), ("thorax", "neck"), ("neck", "head"),
           ("thorax", "l_shoulder"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
           ("thorax", "r_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist")),
)
"""Human3.6M 17 joints (the order used by most 3D pose lifting work) and its 16 bones (a tree)."""

COCO17 = KeypointLayout(
    name="coco17",
    joints=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
            "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
            "right_knee", "left_ankle", "right_ankle"),
    # COCO's own drawing skeleton (19 links; it has cycles, e.g. shoulders-hips).
    bones=(("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
           ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
           ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
           ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
           ("left_eye", "right_eye"), ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
           ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder")),
)
"""COCO person keypoints, COCO's order; bones are COCO's drawing links (not a tree)."""

_BP_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
# MediaPipe's POSE_CONNECTIONS (35 links, by index), for drawing.
_BP_LINKS = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
             (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22),
             (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30),
             (29, 31), (30, 32), (27, 31), (28, 32))
BLAZEPOSE33 = KeypointLayout(
    name="blazepose33",
    joints=_BP_NAMES,
    bones=tuple((_BP_NAMES[a], _BP_NAMES[b]) for a, b in _BP_LINKS),
)
"""MediaPipe BlazePose 33 landmarks in MediaPipe's index order; bones are its drawing links."""

LAYOUTS: dict[str, KeypointLayout] = {lay.name: lay for lay in (H36M17, COCO17, BLAZEPOSE33)}
"""Registry of layouts by name."""


def get_layout(name: str) -> KeypointLayout:
    """The registered layout called ``name`` (case-insensitive); KeyError listing the known ones."""
    try:
        return LAYOUTS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown keypoint layout {name!r}; known: {', '.join(LAYOUTS)}") from None


def layout_from_joint_names(names: Sequence[str]) -> KeypointLayout:
    """The registered layout whose joints are exactly ``names`` (case-insensitive, any order).

    Use ``layout.indices(names)`` to reorder data stored in another order.

    Raises:
        ValueError: naming the joints unknown to the closest layout and the ones it misses.
    """
    given = [str(n).strip().lower() for n in names]
    if len(set(given)) != len(given):
        dup = sorted({n for n in given if given.count(n) > 1})
        raise ValueError(f"joint names repeat: {dup}")
    for lay in LAYOUTS.values():
        if set(lay.joints) == set(given):
            return lay
    best = max(LAYOUTS.values(), key=lambda lay: len(set(lay.joints) & set(given)))
    unknown = [n for n in given if n not in best.joints]
    missing = [j for j in best.joints if j not in given]
    raise ValueError(f"no keypoint layout has exactly these {len(given)} joints; closest is {best.name!r}, "
                     f"which does not know {unknown} and lacks {missing}")


# ---------------------------------------------------------------------------------------------
# Mappings into H36M17

#: Upper neck = thorax + NECK_FRACTION * (ear midpoint - thorax). The ear midpoint sits about 0.2 m
#: above the shoulder midpoint; half of it is about chin height, where the Bandai skeleton's
#: ``Head`` joint (our ``neck``) lies.
NECK_FRACTION = 0.5
#: Head top = ear midpoint + HEAD_TOP_EXTENSION * (ear midpoint - thorax): the vertex is about
#: 0.12-0.13 m above the ear canals, which are about 0.2 m above the shoulder midpoint.
HEAD_TOP_EXTENSION = 0.6


def _check_kp(kp: FloatArray, layout: KeypointLayout) -> FloatArray:
    a = np.asarray(kp, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2] != layout.n_joints or a.shape[-1] < 2:
        raise ValueError(f"expected {layout.name} keypoints of shape (..., {layout.n_joints}, D + 1) "
                         f"(coordinates then confidence, D >= 1), got {a.shape}")
    return a


def _derive(kp: FloatArray, layout: KeypointLayout, weights: dict[str, float]) -> FloatArray:
    """A derived joint ``sum_k w_k * joint_k`` (coordinates); confidence = min over sources.

    Returns ``(..., D + 1)``; all NaN where any value of any source is NaN.
    """
    idx = layout.indices(weights)
    w = np.array(list(weights.values()), dtype=np.float64)
    src = kp[..., idx, :]  # (..., K, D + 1)
    coords = np.einsum("k,...kd->...d", w, src[..., :-1])
    conf = src[..., -1].min(axis=-1)
    out = np.concatenate([coords, conf[..., None]], axis=-1)
    bad = np.isnan(src).any(axis=(-1, -2))
    out[bad] = np.nan
    return out


def _to_h36m17(kp: FloatArray, layout: KeypointLayout, direct: dict[str, str]) -> FloatArray:
    """Shared body of the 2D/3D detector-layout mappings (both detector layouts name the same joints)."""
    a = _check_kp(kp, layout)
    out = np.full(a.shape[:-2] + (H36M17.n_joints, a.shape[-1]), np.nan)
    for dst, src in direct.items():
        out[..., H36M17.index(dst), :] = a[..., layout.index(src), :]
    half = 0.5
    n, e = NECK_FRACTION, HEAD_TOP_EXTENSION
    hips = {"left_hip": half, "right_hip": half}
    shoulders = {"left_shoulder": half, "right_shoulder": half}
    out[..., H36M17.index("pelvis"), :] = _derive(a, layout, hips)
    out[..., H36M17.index("thorax"), :] = _derive(a, layout, shoulders)
    out[..., H36M17.index("spine"), :] = _derive(a, layout, {k: half * v for k, v in (hips | shoulders).items()})
    # neck = (1 - n) * thorax + n * ears_mid ; head = (1 + e) * ears_mid - e * thorax
    out[..., H36M17.index("neck"), :] = _derive(
        a, layout, {"left_shoulder": (1 - n) * half, "right_shoulder": (1 - n) * half,
                    "left_ear": n * half, "right_ear": n * half})
    out[..., H36M17.index("head"), :] = _derive(
        a, layout, {"left_shoulder": -e * half, "right_shoulder": -e * half,
                    "left_ear": (1 + e) * half, "right_ear": (1 + e) * half})
    return out


_DIRECT = {"r_hip": "right_hip", "r_knee": "right_knee", "r_ankle": "right_ankle",
           "l_hip": "left_hip", "l_knee": "left_knee", "l_ankle": "left_ankle",
           "l_shoulder": "left_shoulder", "l_elbow": "left_elbow", "l_wrist": "left_wrist",
           "r_shoulder": "right_shoulder", "r_elbow": "right_elbow", "r_wrist": "right_wrist"}


def coco17_to_h36m17(kp: FloatArray) -> FloatArray:
    """Map COCO17 keypoints to H36M17, vectorised over leading dimensions.

    Args:
        kp: ``(..., 17, D + 1)``: D coordinates (x, y pixels for 2D; or x, y, z metres) then a
            confidence; NaN where absent.
    Returns:
        ``(..., 17, D + 1)`` in H36M17 order. Hips, knees, ankles, shoulders, elbows and wrists are
        copied. With ``T = (left_shoulder + right_shoulder) / 2`` and
        ``E = (left_ear + right_ear) / 2``:

        * ``pelvis = (left_hip + right_hip) / 2``
        * ``thorax = T``
        * ``spine  = (pelvis + thorax) / 2``
        * ``neck   = T + NECK_FRACTION * (E - T)``  (0.5: halfway from shoulders to ears)
        * ``head   = E + HEAD_TOP_EXTENSION * (E - T)``  (0.6: the head top, beyond the ears)

        A derived joint's confidence is the minimum of its sources' (e.g. ``neck``: both shoulders
        and both ears); the derived joint is all NaN if any source value is NaN. Eyes and nose are
        not used.
    """
    return _to_h36m17(kp, COCO17, _DIRECT)


def blazepose33_to_h36m17(kp: FloatArray) -> FloatArray:
    """Map BlazePose 33 landmarks to H36M17, vectorised over leading dimensions.

    Args:
        kp: ``(..., 33, D + 1)``: coordinates then confidence (for MediaPipe, use its visibility
            or presence score); NaN where absent.
    Returns:
        ``(..., 17, D + 1)`` with exactly the formulas of :func:`coco17_to_h36m17` (BlazePose names
        the hips, knees, ankles, shoulders, elbows, wrists and ears as COCO does; its heels, feet,
        hands, eyes and mouth landmarks are not used).
    """
    return _to_h36m17(kp, BLAZEPOSE33, _DIRECT)


TO_H36M17: dict[str, Callable[[FloatArray], FloatArray]] = {
    "coco17": coco17_to_h36m17,
    "blazepose33": blazepose33_to_h36m17,
    "h36m17": lambda kp: np.array(kp, dtype=np.float64, copy=True),
}
"""Mapping functions into H36M17, by source layout name."""


def to_h36m17(keypoints: FloatArray, layout: KeypointLayout, joint_names: list[str]) -> FloatArray:
    """Map ``(C, F, J, 3)`` keypoints in ``layout`` (joints in ``joint_names`` order) to H36M17."""
    ordered = keypoints[..., layout.indices(joint_names), :] if list(layout.joints) != list(joint_names) else keypoints
    if layout.name == H36M17.name:
        return ordered
    if layout.name == "coco17":
        return coco17_to_h36m17(ordered)
    if layout.name == "blazepose33":
        return blazepose33_to_h36m17(ordered)
    raise InputError(f"no mapping from the {layout.name!r} layout to {H36M17.name}")


def keypoints_for_rig(rig: CameraRig, kp: Keypoints2D, source: str) -> tuple[CameraRig, FloatArray, KeypointLayout]:
    """The rig's cameras in the keypoints' order and the keypoints in the 17-joint body layout.

    Args:
        rig: the calibrated rig (it may have more cameras than the keypoints).
        kp: the 2D keypoints; source: where they came from (named in errors).
    Returns:
        ``(rig subset, keypoints (C, F, 17, 3), the keypoints' own layout)``.
    Raises:
        KeypointFileError: a camera not in the rig, or joints of no known layout.
    """
    unknown = [n for n in kp.camera_names if n not in rig.names]
    if unknown:
        raise KeypointFileError(f"{source}: cameras {unknown} are not in the rig (rig cameras: {', '.join(rig.names)})")
    try:
        layout = layout_from_joint_names(kp.joint_names)
    except ValueError as exc:
        raise KeypointFileError(f"{source}: unknown joints: {exc}") from None
    kp17 = to_h36m17(kp.keypoints, layout, [j.lower() for j in kp.joint_names])
    return rig.subset(kp.camera_names), kp17, layout
