"""Rig calibration workflow: detections -> intrinsics -> initial extrinsics -> bundle adjustment.

``calibrate_rig`` runs the whole thing from recordings; ``calibrate_from_detections`` starts from
board detections (what tests and benchmarks with their own detections use). Both return the rig
and its :class:`~.report.CalibrationReport`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from posestudio.capture.sources import FrameSource
from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.camera import CAMERA_MODELS, Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import matrix_to_rodrigues, rodrigues_to_matrix

from .board import BoardSpec
from .board_diagnose import MAX_FRAMES, summarise_board_mismatch
from .detect import CameraDetections
from .detect_recordings import Progress, detect_sources, stderr_progress
from .errors import CalibrationFailure, CalibrationInputError
from .extrinsics_init import ExtrinsicInit, initialise_extrinsics
from .intrinsics import IntrinsicsResult, board_poses, calibrate_intrinsics
from .quality import board_size_error, intrinsics_uncertainty_warnings
from .report import (
    AdjustmentSummary,
    BoardSummary,
    CalibrationReport,
    CameraEntry,
    CameraGraph,
    RejectedCorner,
    RejectedFrames,
    RejectedPose,
    SolveSettings,
    StageTimes,
    TimeOffset,
)
from .time_offsets import DEFAULT_FPS, offset_warnings
from .world_frame import (
    ScenePointsFit,
    WorldFrame,
    default_world_frame,
    read_scene_points,
    world_frame_from_board,
    world_frame_from_scene_points,
)

if TYPE_CHECKING:
    from .bundle_adjust import AdjustmentOptions, AdjustmentResult, Observations

#: ``CalibrationOptions.sync``: solve each camera's time offset, or trust the frame pairing.
SYNC_MODES = ("estimate", "index")


@dataclass
class CalibrationOptions:
    """How to calibrate.

    Attributes:
        model: lens model, ``"pinhole"`` or ``"fisheye"``.
        sync: ``"estimate"`` (solve each camera's sub-frame time offset) or ``"index"`` (trust the
            frame pairing as given).
        origin_frame: frame whose board pose sets the world frame (Z up out of the printed face);
            None: origin at the centre of the board's path, Z up from the cameras' mean up.
        scene_points: TOML of surveyed points and their pixels per camera that set the world
            frame instead (see :func:`world_frame.read_scene_points`).
        intrinsics_only: stop after per-camera intrinsics.
        fixed_intrinsics: a rig whose cameras' intrinsics are kept (matched by name).
        refine_intrinsics: refine intrinsics in the global adjustment.
        fps: frame rate for converting offsets to seconds (None: from the videos, else 30).
        seed: seed for every sampled choice.
        workers: recordings detected at once, one per worker (0: one per core; see ``detect_recordings``).
        weigh_views: weigh each board view by how noisy its corners are (:mod:`.view_noise`);
            False: every corner alike.

    ``posestudio calibrate`` reads its defaults from here.
    """

    model: str = "pinhole"
    sync: str = "estimate"
    origin_frame: int | None = None
    scene_points: Path | None = None
    intrinsics_only: bool = False
    fixed_intrinsics: CameraRig | None = None
    refine_intrinsics: bool = True
    fps: float | None = None
    seed: int = 0
    workers: int = 0
    weigh_views: bool = True

    def check(self) -> None:
        """Raise :class:`CalibrationInputError` naming an option whose value cannot be used."""
        if self.model not in CAMERA_MODELS:
            raise CalibrationInputError(f"lens model must be one of {', '.join(CAMERA_MODELS)}, got {self.model!r}")
        if self.sync not in SYNC_MODES:
            raise CalibrationInputError(f"sync must be 'estimate' or 'index', got {self.sync!r}")
        if self.origin_frame is not None and self.scene_points is not None:
            raise CalibrationInputError("give either --origin-frame or --scene-points, not both")
        if self.fps is not None and not self.fps > 0:
            raise CalibrationInputError(f"--fps must be a positive frame rate, got {self.fps}")


@dataclass
class CalibrationResult:
    """A calibrated rig, its report and the detections it was solved from."""

    rig: CameraRig
    report: CalibrationReport
    detections: list[CameraDetections] = field(default_factory=list)


# --------------------------------------------------------------------------- detection


def camera_list(names: list[str], limit: int = 8) -> str:
    """Camera names for a message: all of them up to ``limit``, else the first ones and how many more."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit - 2]) + f", ... {names[-1]} ({len(names)} cameras)"


def _read_frames(path: Path, wanted: list[int]) -> list[NDArray[np.uint8]]:
    """The gray frames ``wanted`` (sorted indices) of a recording, streamed: only those are kept."""
    want, out = set(wanted), []
    for i, img in FrameSource.open(path).frames(gray=True):
        if i in want:
            out.append(img)
            if len(out) == len(want):
                break
    return out


def _diagnosis_frames(dets: list[CameraDetections], failed: list[int], paths: list[Path] | None,
                      n_frames: int = MAX_FRAMES, n_cameras: int = 3) -> tuple[list[NDArray[np.uint8]], list[str]]:
    """A few frames of a few cameras that did not find the board, for :func:`summarise_board_mismatch`.

    Cameras that saw most markers of the board file's dictionary come first, and their frames with
    markers; otherwise frames spread over the recording. Returns ``(gray frames, camera names)``.
    """
    if not paths:
        return [], []
    order = sorted(failed, key=lambda i: -len(dets[i].marker_frames))[:n_cameras]
    per = -(-n_frames // len(order))
    images, used = [], []
    for i in order:
        d = dets[i]
        pool = d.marker_frames or list(range(d.n_frames))
        if not pool:
            continue
        pick = sorted({pool[int(k)] for k in np.linspace(0, len(pool) - 1, min(per, len(pool))).round()})
        got = _read_frames(paths[i], pick)
        if got:
            images.extend(got)
            used.append(d.name)
    return images, used


def check_detections(dets: list[CameraDetections], board: BoardSpec, paths: list[Path] | None) -> list[str]:
    """Raise when cameras never saw the board, in a few lines for the whole rig; return warnings.

    The failure names every camera without the board (grouped), says whether markers of the board
    file's dictionary were seen, and adds :func:`summarise_board_mismatch` of a few frames of a
    few of those cameras: the dictionary, ids and layout seen and the board-file fields to change.
    A board found only with the other polarity than the file says is one warning for the rig.
    """
    src = board.source
    warnings = []
    flipped = [d.name for d in dets if d.inverted_frames]
    if flipped:
        print_is = "white on black" if not board.inverted else "black on white"
        warnings.append(f"{src}: the board was found only with inverted polarity (printed {print_is}) by cameras "
                        f"{camera_list(flipped)} ({len(flipped)} of {len(dets)}); detection tries both, but set "
                        f"inverted = {str(not board.inverted).lower()} in {src}")
    failed = [i for i, d in enumerate(dets) if not d.observations]
    if not failed:
        return warnings
    names = [dets[i].name for i in failed]
    counts = sorted({dets[i].n_frames for i in failed})
    if len(failed) == 1:
        lines = [f"camera {names[0]}: no board found in any of its {counts[0]} frames"]
    else:
        each = f"{counts[0]} each" if len(counts) == 1 else f"{counts[0]} to {counts[-1]} each"
        lines = [f"cameras {camera_list(names)}: no board found in any of their frames ({len(failed)} of "
                 f"{len(dets)} cameras, {each})"]
    found = [d.name for d in dets if d.observations]
    if found:
        lines[0] += f"; the board was found by {camera_list(found)}"
    if board.type == "charuco":
        seen_by = [i for i in failed if dets[i].marker_ids_seen]
        if seen_by:
            ids = sorted(set().union(*(dets[i].marker_ids_seen for i in seen_by)))
            who = "" if len(failed) == 1 else f" by {len(seen_by)} of them"
            lines.append(f"ArUco markers of {board.dictionary} with {len(ids)} ids from {ids[0]} to {ids[-1]} were "
                         f"seen{who}: the board file probably does not match the printed board")
        else:
            lines.append(f"no ArUco marker of {board.dictionary} was seen " + ("either" if len(failed) == 1
                                                                              else "by any of them"))
    images, used = _diagnosis_frames(dets, failed, paths)
    if images:
        lines.append(summarise_board_mismatch(images, board, ", ".join(used)))
    raise CalibrationFailure("\n".join(lines))


# --------------------------------------------------------------------------- solver steps
def _intrinsic_vector(cam: Camera) -> FloatArray:
    """``(9,)`` fx, fy, cx, cy, distortion (zero-padded) of a camera, as the adjustment holds them."""
    v = np.zeros(9)
    v[:4] = [cam.matrix[0, 0], cam.matrix[1, 1], cam.matrix[0, 2], cam.matrix[1, 2]]
    v[4:4 + min(5, cam.dist.size)] = cam.dist[:5]
    return v


def _camera_from_vectors(template: Camera, intr: FloatArray, ext: FloatArray, offset_s: float) -> Camera:
    """The camera of adjusted intrinsics ``(9,)``, extrinsics ``(6,)`` and time offset (seconds)."""
    k = np.array([[intr[0], 0.0, intr[2]], [0.0, intr[1], intr[3]], [0.0, 0.0, 1.0]])
    n = 4 if template.model == "fisheye" else 5
    return Camera(template.name, template.image_size, k, intr[4:4 + n], rodrigues_to_matrix(ext[:3]),
                  ext[3:].copy(), template.model, offset_s)


def _solve_intrinsics(dets: list[CameraDetections], board: BoardSpec, options: CalibrationOptions,
                      say: Progress) -> list[IntrinsicsResult]:
    """Each camera's intrinsics (or the fixed rig's) and its board pose in every view."""
    intr: list[IntrinsicsResult] = []
    for d in dets:
        if options.fixed_intrinsics is None:
            say(f"intrinsics: {d.name} from {len(d.observations)} views")
            intr.append(calibrate_intrinsics(d.name, d.observations, board, d.image_size, options.model,
                                             options.seed))
            continue
        if d.name not in options.fixed_intrinsics.names:
            raise CalibrationInputError(
                f"--fix-intrinsics: the rig has no camera named {d.name!r} "
                f"(it has {', '.join(options.fixed_intrinsics.names)})")
        fixed = options.fixed_intrinsics[d.name].copy()
        if tuple(fixed.image_size) != tuple(d.image_size):
            raise CalibrationInputError(
                f"--fix-intrinsics: camera {d.name} is {d.image_size[0]}x{d.image_size[1]} in the recording "
                f"but {fixed.image_size[0]}x{fixed.image_size[1]} in the fixed rig")
        fixed = fixed.with_pose(np.eye(3), np.zeros(3))
        poses, rej = board_poses(fixed, d.observations, board)
        intr.append(IntrinsicsResult(fixed, float("nan"), [], poses, rej))
    return intr


def _adjust(dets: list[CameraDetections], board: BoardSpec, intr: list[IntrinsicsResult], init: ExtrinsicInit,
            frames: list[int], options: CalibrationOptions, say: Progress) -> AdjustmentResult:
    """The staged bundle adjustment from the initial extrinsics."""
    # Imported here for start-up time: scipy.sparse takes about 0.2 s, and every posestudio command
    # imports this module (CalibrationOptions holds the calibrate command's defaults).
    from .bundle_adjust import AdjustmentOptions, Observations, RigParameters, adjust

    obs = Observations.from_detections(dets, board, frames)
    params = RigParameters(
        intrinsics=np.stack([_intrinsic_vector(r.camera) for r in intr]),
        extrinsics=np.stack([np.concatenate([matrix_to_rodrigues(r), tv]) for r, tv in init.cameras]),
        poses=np.stack([np.concatenate([matrix_to_rodrigues(init.boards[f][0]), init.boards[f][1]]) for f in frames]),
        offsets=np.zeros(len(dets)),
        fisheye=np.array([r.camera.model == "fisheye" for r in intr]),
    )
    refine = options.refine_intrinsics and options.fixed_intrinsics is None
    say(f"bundle adjustment: {len(obs)} corners, {len(dets)} cameras, {len(frames)} board poses")
    # Stages from well to weakly conditioned: poses with each camera's own intrinsics held (fast,
    # and rejects outliers), then intrinsics and time offsets jointly. Starting the joint solve near
    # its optimum keeps distortion terms that few corners constrain from wandering. The intrinsics
    # are not solved without the offsets first: with a lag left unmodelled the residuals are
    # systematic, Gauss-Newton crawls (30 iterations at 16-32 cameras) towards a biased optimum the
    # offsets' stage then has to undo; solved together they converge in about 10 to the same rig.
    stages = [AdjustmentOptions(refine_intrinsics=False, estimate_offsets=False, reference_camera=init.root, rounds=1,
                                weigh_views=options.weigh_views)]
    if refine or options.sync == "estimate":
        # The first stage only starts the next one: with each camera's own intrinsics held, its
        # last iterations crawl on residuals the joint stage explains (28 on a 6-camera ring with
        # strong distortion); stopping it at 1e-4 instead of 1e-6 leaves the final rig unchanged.
        stages[0] = replace(stages[0], tolerance=1e-4)
        # Outliers are only decided in the last stage (its model is the best one).
        stages.append(AdjustmentOptions(refine_intrinsics=refine, estimate_offsets=options.sync == "estimate",
                                        reference_camera=init.root, rounds=2, weigh_views=options.weigh_views))
    # The kept solution's uncertainties are worked out once, by the last stage.
    stages[-1] = replace(stages[-1], standard_deviations=True)
    res = None
    iterations = 0
    for stage in stages:
        # Every stage starts from all corners: which ones are outliers is decided afresh by the
        # better model of each stage (the first holds each camera's own intrinsics, whose errors
        # at the image edges must not count as outliers).
        if res is not None:
            params = res.params
            stage = replace(stage, huber_px=max(res.huber_px, 0.5))
        if stage.estimate_offsets:
            say("bundle adjustment: estimating per-camera time offsets")
        res = adjust(obs, params, stage)
        iterations += res.iterations
    if stages[-1].estimate_offsets:
        res, extra = _choose_time_model(obs, res, stages[-1], say)
        iterations += extra
    res.iterations = iterations
    return res


#: Iterations of the linear time model's trial from the quadratic model's solution, and how much
#: lower (fraction) its RMS must come to be preferred.
TIME_MODEL_TRIAL_ITERATIONS = 4
TIME_MODEL_MARGIN = 0.01


def _choose_time_model(obs: Observations, res: AdjustmentResult, stage: AdjustmentOptions,
                       say: Progress) -> tuple[AdjustmentResult, int]:
    """The quadratic time model's solution, or the linear model's where it fits clearly better.

    The parabola through neighbouring board poses is exact for a smoothly moving board (on rendered
    30 fps takes with offsets up to half a frame it brought the intrinsics errors down to what the
    corner noise explains: 10-20 % lower on average over four overhead takes, up to half on one); at
    low frame rates a hand-held board's path between frames is not a parabola (the real 6 fps
    session: corner RMS 0.77 px against 0.69 px with the straight line). Both models have the same unknowns, so their fits compare directly:
    a few iterations of the linear model from the quadratic solution, on the same corners, decide.

    Returns:
        ``(the chosen solution, with its time_model set; the iterations this choice took)``.
    """
    from .bundle_adjust import adjust

    def rms(r: AdjustmentResult) -> float:
        return float(np.sqrt(np.mean(np.sum(r.residuals**2, axis=1))))

    trial = adjust(res.observations.with_time_model("linear"), res.params,
                   replace(stage, rounds=1, max_iterations=TIME_MODEL_TRIAL_ITERATIONS, huber_px=res.huber_px,
                           standard_deviations=False))
    res.time_model = "quadratic"
    if rms(trial) >= (1.0 - TIME_MODEL_MARGIN) * rms(res):
        return res, trial.iterations
    say(f"bundle adjustment: the straight-line time model fits better ({rms(trial):.3f} against {rms(res):.3f} px)")
    linear = adjust(obs.with_time_model("linear"), trial.params, replace(stage, huber_px=res.huber_px))
    linear.time_model = "linear"
    return linear, trial.iterations + linear.iterations


def _place_world(cams: list[Camera], board_to_world: dict[int, tuple[FloatArray, FloatArray]],
                 options: CalibrationOptions, names: list[str]
                 ) -> tuple[list[Camera], WorldFrame, ScenePointsFit | None]:
    """The cameras in the world frame the options ask for (see :class:`CalibrationOptions`)."""
    if options.origin_frame is not None:
        if options.origin_frame not in board_to_world:
            seen = [f for f in board_to_world if abs(f - options.origin_frame) <= 10]
            raise CalibrationInputError(
                f"--origin-frame {options.origin_frame}: the board has no solved pose in that frame "
                f"(nearby frames with a pose: {seen or 'none'})")
        world: WorldFrame = world_frame_from_board(*board_to_world[options.origin_frame], options.origin_frame)
    else:
        world = default_world_frame(cams, [tb for _, tb in board_to_world.values()])
    cams = [world.apply(c) for c in cams]
    fit = None
    if options.scene_points is not None:
        names_sp, world_sp, pixels_sp = read_scene_points(options.scene_points, names)
        world, fit = world_frame_from_scene_points(CameraRig(cams), names_sp, world_sp, pixels_sp,
                                                   str(options.scene_points))
        cams = [world.apply(c) for c in cams]
    return cams, world, fit


# --------------------------------------------------------------------------- main entry points
def calibrate_rig(paths: list[str | Path], board: BoardSpec, options: CalibrationOptions | None = None,
                  progress: Progress | None = stderr_progress) -> CalibrationResult:
    """Calibrate a rig from one recording (video or image folder) per camera."""
    options = options or CalibrationOptions()
    options.check()
    paths = [Path(p) for p in paths]
    if not paths:
        raise CalibrationInputError("no inputs: give one video file or image folder per camera")
    t0 = time.perf_counter()
    dets, fps = detect_sources(paths, board, options.workers, progress)
    t_detect = time.perf_counter() - t0
    result = calibrate_from_detections(dets, board, options, fps=options.fps or fps, progress=progress,
                                       paths=paths)
    result.report.timing_s.detection = round(t_detect, 3)
    result.report.timing_s.total = round(time.perf_counter() - t0, 3)
    result.report.inputs = [str(p) for p in paths]
    return result


def calibrate_from_detections(dets: list[CameraDetections], board: BoardSpec,
                              options: CalibrationOptions | None = None, fps: float | None = None,
                              progress: Progress | None = stderr_progress,
                              paths: list[Path] | None = None) -> CalibrationResult:
    """Calibrate from board detections (one :class:`CameraDetections` per camera).

    Args:
        fps: frames per second of the recordings (None: 30), for offsets in seconds.
        paths: the recordings, for a diagnosis when a camera never saw the board.
    """
    options = options or CalibrationOptions()
    options.check()
    fps = float(fps or DEFAULT_FPS)
    say = progress or (lambda _m: None)
    timing = StageTimes()
    warnings = check_detections(dets, board, paths)
    names = [d.name for d in dets]

    # 1. intrinsics ----------------------------------------------------------------------------
    t = time.perf_counter()
    intr = _solve_intrinsics(dets, board, options, say)
    timing.intrinsics = round(time.perf_counter() - t, 3)
    report = CalibrationReport(board=BoardSummary.of(board),
                               options=SolveSettings(options.model, options.sync, options.origin_frame,
                                                     options.seed, fps),
                               timing_s=timing, warnings=warnings)
    if options.intrinsics_only:
        cams = [r.camera for r in intr]
        rig = CameraRig(cams, {"world_frame": "none (intrinsics only)", "tool": "posestudio calibrate"})
        for r, d in zip(intr, dets):
            entry = _camera_entry(r, d)
            entry.focal_px, entry.principal_point_px = list(r.camera.focal), list(r.camera.principal_point)
            entry.distortion = r.camera.dist.tolist()
            report.cameras[r.camera.name] = entry
        return CalibrationResult(rig, report, dets)

    # 2. initial extrinsics ----------------------------------------------------------------------
    t = time.perf_counter()
    init = initialise_extrinsics(names, [r.board_poses for r in intr])
    timing.initialisation = round(time.perf_counter() - t, 3)
    frames = sorted(init.boards)
    if not frames:
        raise CalibrationFailure("no board pose could be solved in any frame (every view was rejected, see "
                                 "the cameras' rejected poses): check that the board file matches the printed board")
    say(f"extrinsics: camera graph rooted at {names[init.root]}, {len(frames)} board poses")

    # 3. bundle adjustment -------------------------------------------------------------------------
    t = time.perf_counter()
    res = _adjust(dets, board, intr, init, frames, options, say)
    timing.bundle_adjustment = round(time.perf_counter() - t, 3)

    # 4. cameras and world frame -------------------------------------------------------------------
    p = res.params
    cams = [_camera_from_vectors(intr[i].camera, p.intrinsics[i], p.extrinsics[i], p.offsets[i] / fps)
            for i in range(len(dets))]
    board_to_world = {f: (rodrigues_to_matrix(p.poses[i, :3]), p.poses[i, 3:]) for i, f in enumerate(frames)}
    cams, world, report.scene_points = _place_world(cams, board_to_world, options, names)
    rig = CameraRig(cams, {"world_frame": world.description, "tool": "posestudio calibrate", "fps": fps,
                           "reference_camera": names[init.root]})

    # 5. report --------------------------------------------------------------------------------------
    residual = np.linalg.norm(res.residuals, axis=1)
    std = res.offset_std if res.offset_std.size else np.full(len(names), np.nan)
    offsets = {n: TimeOffset(round(float(p.offsets[c]), 4), round(float(p.offsets[c] / fps * 1000), 3),
                             None if not np.isfinite(std[c]) else round(float(std[c] / fps * 1000), 3))
               for c, n in enumerate(names)}
    if options.sync == "estimate":
        warnings.extend(offset_warnings(names, p.offsets, std, fps, init.root))
    report.reference_camera = names[init.root]
    report.world_frame = world.description
    report.reprojection_rms_px = float(np.sqrt(np.mean(residual**2)))
    report.time_offsets = offsets
    report.camera_graph = CameraGraph({f"{names[i]}-{names[j]}": int(init.pair_counts[i, j])
                                       for i in range(len(names)) for j in range(i + 1, len(names))},
                                      [[names[a], names[b]] for a, b in init.tree_edges])
    for c, r in enumerate(intr):
        entry = _camera_entry(r, dets[c])
        mine = res.observations.camera == c
        entry.reprojection_rms_px = float(np.sqrt(np.mean(residual[mine] ** 2)))
        entry.corners_used = int(mine.sum())
        entry.focal_px, entry.principal_point_px = list(cams[c].focal), list(cams[c].principal_point)
        entry.centre_m = cams[c].center.tolist()
        entry.time_offset_ms = offsets[names[c]].ms
        if np.isfinite(res.camera_std[c, :4]).all():
            entry.focal_std_px = [round(float(v), 3) for v in res.camera_std[c, :2]]
            entry.principal_point_std_px = [round(float(v), 3) for v in res.camera_std[c, 2:4]]
        report.cameras[names[c]] = entry
    report.rejected_corners = [RejectedCorner(names[o.camera], o.frame, o.corner, o.error_px, o.reason)
                               for o in res.rejected]
    report.adjustment = AdjustmentSummary(res.iterations, bool(res.converged), int(len(res.observations)),
                                          len(frames), res.time_model)
    t = time.perf_counter()
    report.board_size_error = board_size_error(rig, dets, board)
    if options.sync == "estimate":
        report.board_size_error_time_aligned = board_size_error(rig, dets, board, time_aligned=True)
    timing.quality = round(time.perf_counter() - t, 3)
    warnings.extend(_coverage_warnings(dets))
    warnings.extend(intrinsics_uncertainty_warnings(report.cameras))
    return CalibrationResult(rig, report, dets)


def _camera_entry(r: IntrinsicsResult, d: CameraDetections) -> CameraEntry:
    """What the report says of a camera before the extrinsic solve."""
    return CameraEntry(image_size=list(d.image_size), frames=d.n_frames, board_frames=len(d.observations),
                       intrinsic_rms_px=None if not np.isfinite(r.rms) else round(r.rms, 4),
                       intrinsic_views=r.views_used, rejected_frames=RejectedFrames.of(d.rejected),
                       rejected_poses=[RejectedPose(f, why) for f, why in r.rejected],
                       coverage=coverage_grid(d).tolist())


def coverage_grid(d: CameraDetections, cells: tuple[int, int] = (16, 9)) -> IntArray:
    """Detected corners per image cell: ``(rows, cols)`` counts over a ``cols x rows`` grid."""
    gx, gy = cells
    grid = np.zeros((gy, gx), np.int64)
    if not d.observations:
        return grid
    pix = np.concatenate([o.pixels for o in d.observations])
    w, h = d.image_size
    cx = np.clip((pix[:, 0] / w * gx).astype(int), 0, gx - 1)
    cy = np.clip((pix[:, 1] / h * gy).astype(int), 0, gy - 1)
    np.add.at(grid, (cy, cx), 1)
    return grid


def _coverage_warnings(dets: list[CameraDetections]) -> list[str]:
    """At most two lines however many cameras: those the board covered little of, those with few views."""
    small, few = [], []
    for d in dets:
        frac = float((coverage_grid(d) > 0).mean())
        if frac < 0.5:
            small.append(f"{d.name} {frac:.0%}")
        if len(d.observations) < 10:
            few.append(f"{d.name} {len(d.observations)}")
    out = []
    if small:
        out.append(f"the board covered less than half of the image of {len(small)} camera(s) ({', '.join(small)}); "
                   "distortion near the edges is poorly constrained: move the board through the corners of these views")
    if few:
        out.append(f"few board views ({', '.join(few)}); 20 or more at varied angles are recommended")
    return out
