"""Every setting of a reconstruction, in one tree: :class:`ReconstructionOptions`.

``posestudio reconstruct`` reads its command-line defaults from these dataclasses, so a default is
written once. This module imports nothing heavy (no scipy, no torch), so building the command line
stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .identity import IdentityOptions
from .triangulation import TriangulationOptions


@dataclass
class RefineWeights:
    """Standard deviations of the terms of the trajectory refinement
    (:func:`~posestudio.reconstruction.trajectory_refine.refine_trajectories`).

    Attributes:
        reprojection_px: 2D residual, pixels (detector noise).
        robust_px: residuals beyond about this (pixels) are down-weighted (Cauchy).
        bone_m: bone length, metres.
        acceleration_m: second difference of a joint's track at 30 fps, metres per frame squared
            (scaled to other frame rates; 0.01 m at 30 fps is 9 m/s^2).
        robust_acceleration: accelerations beyond this many ``acceleration_m`` are down-weighted
            (Cauchy), so a kick or a dash is followed rather than smoothed away.
        model_m: distance from the starting estimate, metres.
    """

    reprojection_px: float = 4.0
    robust_px: float = 8.0
    bone_m: float = 0.005
    acceleration_m: float = 0.01
    robust_acceleration: float = 3.0
    model_m: float = 0.20


@dataclass
class RefineWindow:
    """How much of the take the refinement solves at once.

    Attributes:
        frames: offline, the take is refined in windows of at most this many frames, so memory
            and time per window are bounded whatever the take's length and frame rate.
        overlap_frames: offline, each window solves this many frames past the part it keeps (the
            look-ahead that part needs); the next window starts with the last two kept frames
            held fixed (they carry position and velocity across the seam).
        live_frames: live, each frame is refined together with this many frames before it.
    """

    frames: int = 600
    overlap_frames: int = 60
    live_frames: int = 4


@dataclass
class AnchorOptions:
    """Torso anchors across gaps (:func:`~posestudio.reconstruction.anchors.torso_anchors`).

    Attributes:
        velocity_frames: the torso's velocity is its mean over this many frames next to the gap.
        base_sigma_m: uncertainty of an anchor next to a sighting, metres.
        growth_m_per_s: uncertainty added per second away from the nearest sighting, metres.
        max_gap_s: no anchor farther than this from a sighting, seconds.
    """

    velocity_frames: int = 8
    base_sigma_m: float = 0.03
    growth_m_per_s: float = 0.4
    max_gap_s: float = 1.5


@dataclass
class PriorFillOptions:
    """How the factorization prior fills joints
    (:func:`~posestudio.reconstruction.prior_fill.fill_with_prior`).

    Attributes:
        min_known: frames with at least this many reconstructed joints get the prior's shape by
            similarity alignment to them.
        min_confidence: 2D joints below this confidence are not shown to the network.
        min_view_joints: a camera's view is read when it has at least this many joints.
        max_view_fit_px: offline, a body placed by its views (model-based PnP) is kept only below
            this robust RMS reprojection error, pixels. Live never places bodies by their views.
    """

    min_known: int = 4
    min_confidence: float = 0.3
    min_view_joints: int = 6
    max_view_fit_px: float = 15.0


@dataclass
class LiftingFillOptions:
    """How the lifting network fills joints, offline
    (:func:`~posestudio.reconstruction.lifting_fill.fill_with_lifting`), after the single-camera
    rays and before the prior (which fills what it leaves). Each case is switched on its own; the
    defaults are the measured choice (``benchmarks/RESULTS.md``, issue 17): the lift where one
    camera alone sees the body and too few of its joints are reconstructed to align a shape to (it
    must be placed), the prior everywhere else.

    Attributes:
        one_camera_bodies: fill every missing joint in frames that at most one camera sees
            (``min_view_joints`` or more joints) with fewer than ``min_known`` reconstructed
            joints: the lift placed by its own root position, scaled to the performer's bone
            lengths.
        align_one_camera_bodies: in such frames with ``min_known`` or more reconstructed joints
            (the single-camera rays carried them from nearby frames), align the lift to them
            (similarity). Off by default: over three seeds the prior's shape aligned there was as
            good or better (``benchmarks/reconstruction_ablation.py`` part d).
        seen_joints: in frames two or more cameras see, fill missing joints one camera still sees.
        unseen_joints: in those frames, fill missing joints no camera sees.
        min_known: frames with at least this many reconstructed joints get the lift by similarity
            alignment to them.
        min_confidence: 2D joints below this confidence are not shown to the network.
        min_view_joints: a camera's frame is lifted (and counts as seeing the body) when it has at
            least this many such joints.
        snap_to_rays: put filled joints at bone length and on a seeing camera's ray where one
            passes close (:func:`~posestudio.reconstruction.bone_constraints.constrain_filled_joints`).
        cameras: in frames aligned to reconstructed joints, ``"mean"``: every lifted camera's lift
            aligned and averaged (weighted by the joints each sees); ``"best"``: the lift of the
            camera that sees the frame best. Bodies placed by the lift use the best camera's.
        place_by_views: a body placed by the lift is then moved rigidly to fit the cameras' 2D and
            the torso's anchors (model-based PnP); a frame whose fit is worse than
            ``max_view_fit_px`` (robust RMS, pixels) is not filled (the prior may place it).
        compare_placements: offline, with the prior, a body the lift placed is placed by the prior
            too, and the placement that fits the cameras' 2D better (robust RMS) is kept, as the
            prior already chooses between its shape and its mirror.
    """

    one_camera_bodies: bool = True
    seen_joints: bool = False
    unseen_joints: bool = False
    min_known: int = 4
    min_confidence: float = 0.3
    min_view_joints: int = 6
    snap_to_rays: bool = True
    cameras: str = "mean"
    place_by_views: bool = True
    max_view_fit_px: float = 15.0
    align_one_camera_bodies: bool = False
    compare_placements: bool = True


@dataclass
class SwapOptions:
    """Left/right confusions undone before triangulation (:mod:`~posestudio.reconstruction.swaps`).

    Attributes:
        enabled: test every view's left/right pairs against the other views (three or more cameras).
        margin_px: a pair's verdict needs its two detections to fit the other views' consensus
            better by this much (summed over the two, pixels) exchanged (swapped) or as they are.
        cap_px: distances to the consensus are capped at this, pixels (gross outliers).
        fit_px: a swap verdict needs both detections, exchanged, within this of the consensus, pixels.
        whole_body_pairs: a view with at least this many pairs found swapped and none kept has its
            whole body confused: its pairs without a verdict are exchanged too.
        hold_frames: a pair keeps its last verdict through at most this many frames without one.
    """

    enabled: bool = True
    margin_px: float = 12.0
    cap_px: float = 40.0
    fit_px: float = 25.0
    whole_body_pairs: int = 3
    hold_frames: int = 5


@dataclass
class ViewBiasOptions:
    """Offline, each camera's steady offset of each joint's detections estimated from a first
    reconstruction and taken out before a second
    (:func:`~posestudio.reconstruction.offline.view_bias`).

    Attributes:
        enabled: estimate it.
        gate_px: residuals beyond this (outliers, confusions) do not count, pixels.
        min_frames: a camera's joint needs this many counted frames for an estimate.
        floor_px: estimates are shrunk by this much (what noise alone leaves over a take), pixels.
        min_rms_px: the take is reconstructed again only when the offsets' RMS over cameras and
            joints reaches this, pixels (white noise alone leaves about 0.1 px over 150 frames; a
            detector with 4 px offsets, 2.5 px): a second pass costs a first's.
    """

    enabled: bool = True
    gate_px: float = 15.0
    min_frames: int = 40
    floor_px: float = 0.5
    min_rms_px: float = 0.5


def _shipped_prior() -> Path:
    # imported when options are made, not when this module is: the checkpoint module imports torch,
    # which would slow down every `posestudio` command line (commands read defaults from here)
    from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT


def _shipped_lifter() -> Path:
    # imported when options are made (the lifting module imports torch; see _shipped_prior). The
    # measured default (issue 17) uses the lifting network where one camera alone sees the body
    from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT


@dataclass
class ReconstructionOptions:
    """Settings of a reconstruction, every stage's.

    Attributes:
        live: causal path (each frame from earlier frames only) instead of the whole take at once.
        triangulation: robust triangulation settings.
        identity: cameras following a bystander (:class:`~posestudio.reconstruction.identity.IdentityOptions`).
        swaps: left/right confusions in one view undone (:class:`SwapOptions`).
        max_gap_s: offline, gaps up to this long (seconds) are filled by interpolation.
        cutoff_hz: offline Butterworth cut-off, Hz.
        one_euro_min_cutoff, one_euro_beta: live filter without refinement (Hz, Hz per m/s).
        max_carry_s: joints seen by one camera are carried along its rays at most this long
            (seconds) from the frames where they were reconstructed.
        carry_gate_m: a carried joint's guess must lie within this of the camera's ray, metres.
        anchors: the torso's trajectory across gaps (:class:`AnchorOptions`).
        prior_fill: how the prior fills joints (:class:`PriorFillOptions`).
        refine: finish with a joint refinement of the trajectories against the cameras, the bone
            lengths and smoothness (:mod:`~posestudio.reconstruction.trajectory_refine`): in
            windows offline, each frame as it arrives live (else the One Euro filter live).
        refine_weights: its term weights; refine_window: how much it solves at once.
        tie_midpoints: the output pelvis made the midpoint of the hips, as the 17-joint body
            defines it (:func:`~posestudio.reconstruction.stages.tie_midpoints`): the three
            joints' errors averaged.
        view_bias: offline, each camera's steady offset of each joint taken out (:class:`ViewBiasOptions`).
        prior: checkpoint of the factorization network that fills joints the cameras cannot
            triangulate (None: no prior; default: the shipped one).
        lifting: offline, checkpoint of the lifting network (``posestudio train lifting``) that
            fills joints after the single-camera rays and before the prior, in the cases
            ``lifting_fill`` allows (None: not used; default: the shipped one,
            ``models/lifting/checkpoint.pt``). Live never uses it (its window
            reads frames after the one lifted).
        lifting_fill: which cases it fills and how (:class:`LiftingFillOptions`; by default bodies
            one camera alone sees, where it measured better than the prior).
    """

    live: bool = False
    triangulation: TriangulationOptions = field(default_factory=TriangulationOptions)
    identity: IdentityOptions = field(default_factory=IdentityOptions)
    swaps: SwapOptions = field(default_factory=SwapOptions)
    max_gap_s: float = 0.5
    cutoff_hz: float = 6.0
    # Tuned on projected motion capture (benchmarks/reconstruction.py): at beta = 1 the filter lags
    # a running body by tens of millimetres; beta = 20 keeps the lag to about 2 mm over the raw
    # error while still smoothing slow, jittery joints.
    one_euro_min_cutoff: float = 2.0
    one_euro_beta: float = 20.0
    max_carry_s: float = 1.0
    carry_gate_m: float = 0.15
    anchors: AnchorOptions = field(default_factory=AnchorOptions)
    prior_fill: PriorFillOptions = field(default_factory=PriorFillOptions)
    refine: bool = True
    refine_weights: RefineWeights = field(default_factory=RefineWeights)
    refine_window: RefineWindow = field(default_factory=RefineWindow)
    tie_midpoints: bool = True
    view_bias: ViewBiasOptions = field(default_factory=ViewBiasOptions)
    prior: str | Path | None = field(default_factory=_shipped_prior)
    lifting: str | Path | None = field(default_factory=_shipped_lifter)
    lifting_fill: LiftingFillOptions = field(default_factory=LiftingFillOptions)
