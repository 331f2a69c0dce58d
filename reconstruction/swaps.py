"""Left and right confused in one view: found against the other views and undone before triangulation.

Detectors confuse a body's left and right, confidently, for a few frames at a time in one view:
the whole body (seen from behind or the side) or one limb (legs crossing). Robust triangulation
outvotes such a view joint by joint, but loses what it saw, and a pair whose two sides project
close together slips in under its outlier threshold. :class:`SwapCorrector` tests every
left/right pair in every view and frame instead:

1. the pairs' joints are triangulated once per view *without* that view (one robust
   triangulation of all cameras x leave-one-out cases at once) and reprojected into it: the other
   views' consensus of where each side is;
2. the view's two detections are compared with it as they are and exchanged: with robust
   (capped) distances ``e``, the evidence is ``e(l, L) + e(r, R) - e(l, R) - e(r, L)``, pixels.
   By the triangle inequality a gross outlier on one side cannot make it exceed twice the other
   side's (noise-sized) distance to the consensus: strong evidence needs *both* sides on the
   other's place;
3. a verdict where the evidence is beyond ``margin_px`` either way; a swap also needs both sides,
   exchanged, within ``fit_px`` of the consensus (a gross outlier that lands near the other
   side's place, its partner a few pixels off, gives some evidence, never both fits);
4. the view as a whole: where at least ``whole_body_pairs`` pairs are found swapped and none kept,
   its pairs without a verdict of their own (sides too close to tell, too few other views) are
   taken as swapped too (the whole body confused); where as many are kept and none swapped, as
   kept. Otherwise a pair keeps its last verdict through up to ``hold_frames`` frames without one,
   so a limb's swap run is undone whole;
5. the pairs found swapped are exchanged back in the keypoints that triangulation and every later
   stage read.

Everything is vectorised over cameras x frames x pairs; the verdicts carried from frame to frame
are a few numbers per camera and pair, so the result of a frame does not depend on the run of
frames it arrives in: the live path (:class:`~.reconstructor.Reconstructor`) and the offline one
(:mod:`.offline`) use the same :class:`SwapCorrector` through :class:`~.stages.FrontEnd`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17

from .options import SwapOptions
from .triangulation import TriangulationOptions, triangulate_robust

_SIDES = (("l_", "r_"), ("left_", "right_"))
#: Frames whose evidence is computed at once (the leave-one-out triangulation holds cameras^2
#: copies of the pairs' detections: blocks keep its memory bounded, about 6 MB for four cameras).
BLOCK_FRAMES = 128


def left_right_pairs(joints: Sequence[str]) -> IntArray:
    """``(P, 2)`` indices ``(left, right)`` of the joints whose names differ only by their side
    prefix (``l_``/``r_`` or ``left_``/``right_``), in the order of the left joints."""
    lookup = {name: i for i, name in enumerate(joints)}
    pairs = [(i, lookup[right + name[len(left):]]) for i, name in enumerate(joints)
             for left, right in _SIDES if name.startswith(left) and right + name[len(left):] in lookup]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


#: H36M17's left/right pairs: hips, knees, ankles, shoulders, elbows, wrists.
H36M17_PAIRS = left_right_pairs(H36M17.joints)


def exchange(keypoints: FloatArray, swapped: BoolArray, pairs: IntArray = H36M17_PAIRS) -> FloatArray:
    """The keypoints with the pairs marked swapped exchanged.

    Args:
        keypoints: ``(C, n, J, K)``; swapped: ``(C, n, P)`` pairs to exchange; pairs: ``(P, 2)``.
    Returns:
        A copy (``keypoints`` itself where nothing is exchanged).
    """
    if not swapped.any():
        return keypoints
    out = keypoints.copy()
    left, right = pairs[:, 0], pairs[:, 1]
    mask = swapped[..., None]
    out[:, :, left] = np.where(mask, keypoints[:, :, right], keypoints[:, :, left])
    out[:, :, right] = np.where(mask, keypoints[:, :, left], keypoints[:, :, right])
    return out


def swap_evidence(rig: CameraRig, keypoints: FloatArray, pairs: IntArray = H36M17_PAIRS,
                  triangulation: TriangulationOptions | None = None, options: SwapOptions | None = None
                  ) -> tuple[FloatArray, BoolArray, BoolArray]:
    """How much better each view's left/right pairs fit the other views exchanged than as they are.

    Args:
        rig: the cameras of ``keypoints``' first axis.
        keypoints: ``(C, n, J, 3)`` x, y (distorted pixels), confidence; NaN where absent.
        pairs: ``(P, 2)`` ``(left, right)`` joint indices.
        triangulation: settings of the consensus triangulation (its ``min_confidence`` also
            decides which detections are tested).
        options: :class:`~.options.SwapOptions` (its ``cap_px`` and ``fit_px``).
    Returns:
        ``(evidence (C, n, P), valid (C, n, P), fits (C, n, P))``: ``e(l, L) + e(r, R) - e(l, R)
        - e(r, L)``, pixels (positive: the view fits exchanged); where it could be computed (both
        sides detected in the view and triangulated without it); where, exchanged, both sides fit.
    """
    opts = triangulation or TriangulationOptions()
    cap_px, fit_px = (options or SwapOptions()).cap_px, (options or SwapOptions()).fit_px
    n_c = len(rig)
    joints = pairs.T.ravel()                                                   # (2P,) lefts, then rights
    sub = np.asarray(keypoints, dtype=np.float64)[:, :, joints]                # (C, n, 2P, 3)
    detected = np.isfinite(sub[..., :2]).all(-1) & (np.nan_to_num(sub[..., 2]) >= opts.min_confidence)
    # every view left out in turn, all at once: leave-one-out case k has camera k's detections NaN
    cases = np.repeat(sub[:, None], n_c, axis=1)                              # (C, C_out, n, 2P, 3)
    cases[np.arange(n_c), np.arange(n_c)] = np.nan
    consensus = triangulate_robust(rig, cases, opts).points                    # (C_out, n, 2P, 3)
    seen = np.stack([cam.project(consensus[k]) for k, cam in enumerate(rig.cameras)])   # (C, n, 2P, 2)
    n_p = len(pairs)

    def dist(a: slice, b: slice) -> FloatArray:
        return np.minimum(np.linalg.norm(sub[:, :, a, :2] - seen[:, :, b], axis=-1), cap_px)

    lefts, rights = slice(0, n_p), slice(n_p, 2 * n_p)
    kept = dist(lefts, lefts) + dist(rights, rights)
    exchanged_l, exchanged_r = dist(lefts, rights), dist(rights, lefts)
    evidence = kept - exchanged_l - exchanged_r
    usable = detected & np.isfinite(seen).all(-1)
    valid = usable[..., lefts] & usable[..., rights]
    fits = np.maximum(exchanged_l, exchanged_r) <= fit_px
    return np.where(valid, evidence, 0.0), valid, valid & fits


class SwapCorrector:
    """Left/right confusions in each view found and undone, a run of consecutive frames at a time.

    The same result for a frame whatever run it arrives in: each frame's evidence is its own
    (:func:`swap_evidence`); the verdict each (camera, pair) last had, and how many frames ago, is
    carried from one run to the next.

    Args:
        rig: the cameras; triangulation: settings of the consensus triangulation;
        options: :class:`~.options.SwapOptions`; pairs: ``(P, 2)`` the layout's left/right pairs.
    """

    def __init__(self, rig: CameraRig, triangulation: TriangulationOptions | None = None,
                 options: SwapOptions | None = None, pairs: IntArray = H36M17_PAIRS) -> None:
        self.rig = rig
        self.triangulation = triangulation or TriangulationOptions()
        self.options = options or SwapOptions()
        self.pairs = pairs
        self._verdict = np.zeros((len(rig), len(pairs)), bool)            # last verdict: swapped
        self._age = np.full((len(rig), len(pairs)), np.iinfo(np.int32).max, np.int64)   # frames since

    def correct(self, keypoints: FloatArray) -> tuple[FloatArray, BoolArray]:
        """Undo the swaps of the next frames.

        Args:
            keypoints: ``(C, n, J, 3)`` x, y (pixels), confidence of consecutive frames.
        Returns:
            ``(keypoints, swapped (C, n, P))``: the keypoints with the swapped pairs exchanged
            back (the same array where none was), and which pairs were.
        """
        opts = self.options
        n_c, n = keypoints.shape[:2]
        if not opts.enabled or n == 0 or n_c < 3 or not len(self.pairs):
            return keypoints, np.zeros((n_c, n, len(self.pairs)), bool)
        evidence, valid, fits = (np.concatenate(parts, axis=1) for parts in zip(*(
            swap_evidence(self.rig, keypoints[:, s:s + BLOCK_FRAMES], self.pairs, self.triangulation, opts)
            for s in range(0, n, BLOCK_FRAMES))))
        keep, swap = valid & (evidence < -opts.margin_px), fits & (evidence > opts.margin_px)   # (C, n, P)
        # the whole body confused, or the whole body right: pairs without a verdict of their own
        # (sides too close, too few other views) follow the view when at least `whole_body_pairs`
        # pairs were found swapped and none kept, or kept and none swapped
        whole_swapped = (swap.sum(-1) >= opts.whole_body_pairs) & ~keep.any(-1)                # (C, n)
        whole_kept = (keep.sum(-1) >= opts.whole_body_pairs) & ~swap.any(-1)
        swap |= whole_swapped[..., None] & ~keep
        keep |= whole_kept[..., None] & ~swap
        frame = np.arange(n)[None, :, None]
        last = np.maximum.accumulate(np.where(keep | swap, frame, -1), axis=1)               # last verdict's frame
        before = last < 0
        verdict = np.where(before, self._verdict[:, None], np.take_along_axis(swap, np.maximum(last, 0), axis=1))
        age = np.where(before, np.minimum(self._age[:, None] + frame + 1, np.iinfo(np.int32).max), frame - last)
        self._verdict, self._age = verdict[:, -1], age[:, -1]
        swapped = verdict & (age <= opts.hold_frames)
        return exchange(keypoints, swapped, self.pairs), swapped

    def joints_swapped(self, swapped: BoolArray, n_joints: int = H36M17.n_joints) -> BoolArray:
        """``(C, n, J)`` joints exchanged, from ``(C, n, P)`` pairs."""
        out = np.zeros(swapped.shape[:2] + (n_joints,), bool)
        out[..., self.pairs[:, 0]] = swapped
        out[..., self.pairs[:, 1]] = swapped
        return out
