"""The streaming entry point: one multi-view frame of 2D keypoints in, one 3D skeleton out.

:class:`Reconstructor` is what a live server calls frame by frame (:meth:`Reconstructor.push`),
and what ``reconstruct(..., live=True)`` calls for every frame of a recorded take
(:meth:`Reconstructor.run`), so the live and the offline causal results are one computation. A
frame goes through, using only itself and earlier frames:

1. the layout mapped to the 17-joint body, left and right confused in one view undone
   (:class:`~.swaps.SwapCorrector`), robust triangulation;
2. cameras following another person left out (:class:`~.identity.IdentityTracker`; 1 and 2 are
   the offline path's :class:`~.stages.FrontEnd`);
3. the performer's bone lengths so far (a running mean over frames three cameras see), two-view
   joints whose bones disagree with them dropped;
4. joints one camera sees carried along its ray from the frames before, the torso's motion
   extrapolated across gaps; what is still missing filled by the factorization prior;
5. the refinement of the frame with the few before it (:class:`~.trajectory_refine.CausalRefiner`),
   or the One Euro filter; the pelvis made the hips' midpoint (:func:`~.stages.tie_midpoints`);
6. each joint's confidence, and the report's sums (:class:`~.report.ReportTally`).

Everything carried from frame to frame is a fixed number of frames or a fixed set of sums, so a
frame costs the same at the start of a take and an hour in. ``run`` of a take whose options are not
``live`` reconstructs it offline instead (:mod:`.offline`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_per_joint, bone_lengths
from posestudio.models.keypoints import H36M17, keypoints_for_rig, to_h36m17

from .anchors import torso_anchors
from .filters import OneEuroFilter
from .offline import reconstruct_offline
from .options import ReconstructionOptions
from .plausibility import implausible_joints
from .prior_fill import fill_with_prior
from .ray_carry import propagate_along_rays
from .report import ReconstructionReport, ReconstructionResult, ReportTally
from .stages import Detections, FrontEnd, joint_confidence, load_prior, tie_midpoints
from .trajectory_refine import CausalRefiner

ROOT = H36M17.index("pelvis")
#: Frames :meth:`Reconstructor.run` gives the frame-independent stages at once (live takes).
LIVE_CHUNK_FRAMES = 256


@dataclass
class Skeleton:
    """One reconstructed frame.

    Attributes:
        frame: its index in the stream (0 for the first frame pushed).
        points: ``(17, 3)`` H36M17 joints in the rig's world frame, metres (NaN where unknown).
        confidence: ``(17,)`` in [0, 1]; how each joint was made (see :func:`~.stages.joint_confidence`).
    """

    frame: int
    points: FloatArray
    confidence: FloatArray


class CausalRayCarry:
    """Joints missing in a frame but placed in the one before, carried along a seeing camera's ray,
    frame by frame: :func:`~.ray_carry.propagate_along_rays` (causal) as a stream.

    The whole-take carrying advances one frame per pass, ``max_frames`` passes: after pass ``k`` a
    frame is a function of itself and of the frame before it after pass ``k - 1``. A pass applied
    twice with the same frame before changes nothing more, so a frame needs a pass only where the
    frame before it changed. The state is the states the last frame went through (at most one per
    joint, plus its first), and each pass covers two frames: the same result as the whole take's,
    at a cost that does not grow with it.

    Args:
        origins: ``(C, 3)`` camera centres, metres.
        max_frames: farthest a joint is carried from where it was reconstructed, frames.
        gate_m: largest distance between a joint's guess and the ray point, metres.
    """

    def __init__(self, origins: FloatArray, max_frames: int, gate_m: float) -> None:
        self.origins, self.max_frames, self.gate_m = origins, max_frames, gate_m
        self._history: list[tuple[int, FloatArray]] | None = None   # (pass, state) of the last frame
        self._track: FloatArray | None = None                       # (3,) where its body was

    def step(self, points: FloatArray, usable: BoolArray, directions: FloatArray, bone_length: FloatArray,
             track: FloatArray) -> tuple[FloatArray, BoolArray]:
        """Carry joints into the next frame.

        Args:
            points: ``(J, 3)`` metres, NaN where missing; usable: ``(C, J)`` rays that may be used;
            directions: ``(C, J, 3)`` unit rays through the 2D joints (NaN where unseen);
            bone_length: ``(J,)`` length of the bone ending at each joint, metres;
            track: ``(3,)`` where the body is (its motion since the frame before moves the guesses).
        Returns:
            ``(points (J, 3), carried (J,))``.
        """
        previous, self._history = self._history, [(0, points)]
        previous_track, self._track = self._track, track
        carried = np.zeros(points.shape[0], bool)
        if previous is None or not (~np.isfinite(points).all(-1) & usable.any(0)).any():
            return points, carried
        pair = {"parents": H36M17.parents, "order": H36M17.topological_order(),
                "bone_length": np.stack([bone_length] * 2), "origins": self.origins,
                "directions": np.stack([directions] * 2, axis=1), "usable": np.stack([usable] * 2, axis=1),
                "root_track": np.stack([previous_track, track]), "causal": True, "max_frames": 1,
                "gate_m": self.gate_m}
        state = points
        for k in sorted({1} | {k + 1 for k, _ in previous if k >= 1}):
            if k > self.max_frames:
                break
            before = [s for j, s in previous if j <= k - 1][-1]       # the frame before, after pass k - 1
            out, moved = propagate_along_rays(np.stack([before, state]), **pair)
            if moved[1].any():
                state = out[1]
                carried |= moved[1]
                self._history.append((k, state))
        return state, carried


class Reconstructor:
    """Reconstruct one performer from multi-view 2D keypoints, frame by frame.

    Args:
        rig: the calibrated rig (it may have more cameras than the frames).
        fps: frame rate of the frames, Hz.
        camera_names: the cameras of a frame's first axis, in order (default: the rig's).
        joint_names: the joints of a frame's second axis, a known layout in any order (H36M17,
            COCO17, BlazePose33; default: H36M17).
        options: :class:`~.options.ReconstructionOptions`; ``live`` chooses what :meth:`run`
            does with a whole take, :meth:`push` is always causal.
        source: where the keypoints come from, named in errors.
    Raises:
        InputError: cameras not in the rig, joints of no known layout, a bad frame rate; a prior
            checkpoint that cannot be read.
    """

    def __init__(self, rig: CameraRig, fps: float, camera_names: list[str] | None = None,
                 joint_names: list[str] | None = None, options: ReconstructionOptions | None = None,
                 source: str = "<frames>") -> None:
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"{source}: the frame rate must be a positive number, got {fps}")
        self.options = opts = options or ReconstructionOptions()
        self.fps = float(fps)
        self.source = source
        self.camera_names = list(rig.names if camera_names is None else camera_names)
        self.joint_names = list(H36M17.joints if joint_names is None else joint_names)
        empty = Keypoints2D(np.empty((len(self.camera_names), 0, len(self.joint_names), 3)),
                            self.camera_names, self.joint_names, self.fps)
        self.rig, _, self.layout = keypoints_for_rig(rig, empty, source)   # checks cameras and joints
        self._joints_lower = [j.lower() for j in self.joint_names]
        self.prior = load_prior(opts.prior) if opts.prior else None
        self.bones = H36M17.bone_indices
        self.carry_frames = round(opts.max_carry_s * self.fps)
        a = opts.anchors
        # the torso's anchor looks back to its last sighting (at most max_gap_s) and the velocity before it
        self._anchor_frames = int(a.max_gap_s * self.fps) + a.velocity_frames + 2
        self.reset()

    @classmethod
    def for_take(cls, rig: CameraRig, take: Keypoints2D, options: ReconstructionOptions | None = None,
                 source: str = "<keypoints>") -> Reconstructor:
        """A reconstructor for the cameras, joints and frame rate of ``take``."""
        return cls(rig, take.fps, take.camera_names, take.joint_names, options, source)

    def reset(self) -> None:
        """Forget every frame: the next one pushed starts a new take."""
        opts = self.options
        self.frame = 0
        self._front = FrontEnd(self.rig, self.fps, opts)
        self._bone_sum = np.zeros(len(self.bones))
        self._bone_count = np.zeros(len(self.bones), np.int64)
        self._pelvis: deque[FloatArray] = deque(maxlen=self._anchor_frames)       # (3,) raw pelvis
        self._carry = CausalRayCarry(self.rig.centers, self.carry_frames, opts.carry_gate_m)
        self._refiner = CausalRefiner(self.fps, self.bones, self.rig.rotations, self.rig.translations,
                                      self.rig.focal_x, opts.refine_weights, opts.refine_window.live_frames)
        self._one_euro = OneEuroFilter(opts.one_euro_min_cutoff, opts.one_euro_beta)
        self._tally = ReportTally(self.rig)

    # ------------------------------------------------------------------------------------------
    def push(self, frame: FloatArray) -> Skeleton:
        """Reconstruct the next frame from it and the frames before it.

        Args:
            frame: ``(C, J, 3)`` x, y (distorted pixels), confidence of each camera's joints, in
                the constructor's camera and joint order; NaN where absent.
        Returns:
            :class:`Skeleton`.
        """
        kp = np.asarray(frame, dtype=np.float64)
        want = (len(self.camera_names), len(self.joint_names), 3)
        if kp.shape != want:
            raise InputError(f"{self.source}: frame {self.frame} has shape {kp.shape}; expected "
                             f"(cameras, joints, 3) = {want}")
        points, confidence = self._push_frames(kp[:, None])
        return Skeleton(self.frame - 1, points[0], confidence[0])

    def _push_frames(self, keypoints: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The next ``n`` frames, each from itself and the frames before it.

        What a frame needs of no other frame, or only of a few numbers carried from the frames
        before (the layout, the swap check, triangulation, the identity check, the lenses undone,
        the confidences, the report's sums) is done for the ``n`` frames at once;
        the rest frame by frame. :meth:`push` passes one frame, :meth:`run` a take's frames in
        chunks: one computation.

        Args:
            keypoints: ``(C, n, J, 3)`` in the constructor's camera and joint order.
        Returns:
            ``(points (n, 17, 3), confidence (n, 17))``.
        """
        opts = self.options
        kp17 = to_h36m17(keypoints, self.layout, self._joints_lower)                     # (C, n, 17, 3)
        front = self._front(kp17)
        kp17, raw, inliers, excluded = front.keypoints, front.points, front.inliers, front.excluded
        n_views = inliers.sum(axis=0)                                                      # (n, 17)
        det = Detections.of(self.rig, kp17, inliers, np.isfinite(raw).all(-1), opts.triangulation.min_confidence)
        directions = self.rig.ray_directions(det.xy)
        n = raw.shape[0]
        points = np.empty_like(raw)
        dropped, carried, by_prior = (np.zeros((n, H36M17.n_joints), bool) for _ in range(3))
        for i in range(n):                              # causal: a loop over frames, as a live server runs
            reference = self._running_bone_lengths(raw[i], n_views[i] >= 3)
            dropped[i] = implausible_joints(raw[None, i], self.bones, (n_views[i] == 2)[None], reference)[0]
            raw[i, dropped[i]] = np.nan
            frame = Detections(kp17[:, i:i + 1], det.xy[:, i:i + 1], det.usable[:, i:i + 1], inliers[:, i:i + 1],
                               np.isfinite(raw[None, i]).all(-1))
            filled, carried[i], by_prior[i] = self._fill(raw[i], frame, directions[:, i], reference)
            if opts.refine:
                points[i] = self._refiner.step(filled, det.xy[:, i], frame.refine_views[:, 0], reference)
            else:
                points[i] = self._one_euro(filled, self.frame / self.fps)
            self.frame += 1
        if opts.tie_midpoints:                          # on the output only: the refiner keeps its own
            points = tie_midpoints(points)
        triangulated = np.isfinite(raw).all(-1)
        none = np.zeros_like(carried)
        confidence = joint_confidence(inliers, kp17[..., 2], points, none, carried, by_prior)
        self._tally.add(points, kp17, inliers, triangulated, none, carried, by_prior, dropped, excluded, front.swapped)
        return points, confidence

    def _running_bone_lengths(self, raw: FloatArray, trusted: BoolArray) -> FloatArray:
        """``(B,)`` metres: each bone's mean length over the frames so far where three cameras
        saw both its ends (NaN until a bone has been seen), this frame included."""
        lengths = bone_lengths(raw, self.bones)
        ok = trusted[self.bones[:, 0]] & trusted[self.bones[:, 1]] & np.isfinite(lengths)
        self._bone_sum += np.where(ok, lengths, 0.0)
        self._bone_count += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._bone_count > 0, self._bone_sum / self._bone_count, np.nan)

    def _fill(self, raw: FloatArray, det: Detections, directions: FloatArray, reference: FloatArray
              ) -> tuple[FloatArray, BoolArray, BoolArray]:
        """Complete the joints two cameras could not give, causally: along a single camera's ray
        (``directions`` ``(C, 17, 3)``) from the frames before, then by the prior.

        Returns:
            ``(points (17, 3), carried (17,), by_prior (17,))``.
        """
        opts = self.options
        self._pelvis.append(raw[ROOT])
        track = raw[ROOT]
        if not np.isfinite(track).all():
            anchors, _ = torso_anchors(np.stack(self._pelvis)[:, None], self.fps, [0], causal=True,
                                       options=opts.anchors)
            track = anchors[-1, 0]
        per_joint = bone_length_per_joint(reference, self.bones, H36M17.n_joints)
        points, carried = self._carry.step(raw, det.usable[:, 0], directions, per_joint, track)
        by_prior = np.zeros_like(carried)
        if self.prior is not None and not np.isfinite(points).all():
            # aligned to triangulated joints only (carried ones, extrapolated from the past, mislead
            # the alignment), no model-based placement of single-camera bodies
            f = opts.prior_fill
            filled, by_prior = fill_with_prior(self.prior, raw[None], det.keypoints, self.rig,
                                               min_known=f.min_known, min_confidence=f.min_confidence,
                                               min_view_joints=f.min_view_joints, bone_lengths=reference[None],
                                               place_by_views=False)
            by_prior = by_prior[0] & ~np.isfinite(points).all(-1)
            points = np.where(by_prior[:, None], filled[0], points)
        return points, carried, by_prior

    # ------------------------------------------------------------------------------------------
    def smoothing(self) -> dict[str, Any]:
        """How the live path smooths: the report's ``smoothing``."""
        opts = self.options
        if opts.refine:
            return {"filter": f"causal refinement (each frame with the {opts.refine_window.live_frames} before it; "
                              "no look-ahead)", "refined": asdict(opts.refine_weights)}
        return {"filter": "one-euro (causal)", "min_cutoff_hz": opts.one_euro_min_cutoff, "beta": opts.one_euro_beta}

    def report(self) -> ReconstructionReport:
        """The report of the frames pushed so far (since the last :meth:`reset`)."""
        opts = self.options
        return self._tally.report(self.fps, self.layout.name, True, self.smoothing(), opts)

    def run(self, take: Keypoints2D) -> ReconstructionResult:
        """Reconstruct a whole take: every frame pushed in order from a fresh start when the
        options are ``live``, else offline (:func:`~.offline.reconstruct_offline`, in bounded memory).

        Args:
            take: keypoints of this reconstructor's cameras, joints and frame rate.
        Returns:
            :class:`~.report.ReconstructionResult`: ``(F, 17, 3)`` joints in metres with their
            confidence, and the report.
        """
        if (list(take.camera_names), list(take.joint_names), float(take.fps)) != \
                (self.camera_names, self.joint_names, self.fps):
            raise InputError(f"{self.source}: the take's cameras, joints or frame rate differ from the reconstructor's")
        if not self.options.live:
            _, kp17, _ = keypoints_for_rig(self.rig, take, self.source)
            return reconstruct_offline(self.rig, kp17, self.fps, self.options, self.prior, self.layout.name)
        self.reset()
        n = take.n_frames
        points, confidence = np.empty((n, H36M17.n_joints, 3)), np.empty((n, H36M17.n_joints))
        for s in range(0, n, LIVE_CHUNK_FRAMES):
            part = slice(s, min(n, s + LIVE_CHUNK_FRAMES))
            points[part], confidence[part] = self._push_frames(take.keypoints[:, part])
        return ReconstructionResult(Points3D(points, confidence, list(H36M17.joints), self.fps), self.report())
