"""Rig calibration workflow: detections -> intrinsics -> initial extrinsics -> bundle adjustment.

``calibrate_rig`` runs the whole thing from recordings; ``calibrate_from_detections`` starts from
board detections (what tests and benchmarks with their own detections use).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import matrix_to_rodrigues, rodrigues_to_matrix

from .board import BoardSpec
from .detect import CameraDetections, detect_in_frames
from .errors import CalibrationFailure, CalibrationInputError
from .extrinsics_init import initialise_extrinsics
from .intrinsics import IntrinsicsResult, board_poses, calibrate_intrinsics
from .quality import board_size_error
from .world_frame import (
    WorldFrame,
    default_world_frame,
    read_scene_points,
    world_frame_from_board,
    world_frame_from_scene_points,
)

Progress = Callable[[str], None]

#: Board poses further apart than this (frames) are not used as velocity neighbours.
MAX_STENCIL_GAP = 2


def _stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
        workers: parallel detection threads (0: one per core).
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


@dataclass
class CalibrationResult:
    """A calibrated rig and everything the report says about it."""

    rig: CameraRig
    report: dict
    detections: list[CameraDetections] = field(default_factory=list)


# --------------------------------------------------------------------------- detection
def detect_sources(paths: list[Path], board: BoardSpec, workers: int = 0,
                   progress: Progress | None = _stderr_progress) -> tuple[list[CameraDetections], float | None]:
    """Detect the board in every frame of every recording (threads over cameras).

    Returns:
        ``(detections per camera in input order, fps of the first video or None)``.
    Raises:
        CalibrationInputError: unreadable inputs, duplicate camera names, unequal frame counts.
    """
    from posestudio.capture.sources import FrameSource, SourceError

    try:
        sources = [FrameSource.open(p) for p in paths]
    except SourceError as exc:
        raise CalibrationInputError(str(exc)) from None
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CalibrationInputError(f"two inputs give the same camera name {dup}: camera names come from the "
                                    "file or folder stem and must be unique")
    total = {"done": 0}
    t0 = time.perf_counter()

    def run(src):
        def frames():
            for i, img in src.frames(gray=True):
                total["done"] += 1
                if progress and total["done"] % 100 == 0:
                    progress(f"  detecting: {total['done']} frames read ({time.perf_counter() - t0:.0f} s)")
                yield i, img
        return detect_in_frames(src.name, frames(), board)

    n_workers = workers or min(len(sources), os.cpu_count() or 1)
    if progress:
        progress(f"detecting the board in {len(sources)} recordings ({n_workers} threads)")
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        dets = list(pool.map(run, sources))
    counts = {d.name: d.n_frames for d in dets}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in counts.items())
        raise CalibrationInputError(
            f"the recordings have different frame counts ({listing}); frames are paired by index, so every "
            "camera must have the same number of frames (trim the longer recordings to the common span)")
    if progress:
        for d in dets:
            progress(f"  {d.name}: board in {len(d.observations)}/{d.n_frames} frames")
    return dets, next((s.fps() for s in sources if s.is_video), None)


def _diagnosis(path: Path | None, board: BoardSpec) -> str:
    """What the frames of a recording suggest about the printed board ('' when unavailable)."""
    if path is None:
        return ""
    try:
        from posestudio.capture.sources import FrameSource

        from .board_diagnose import diagnose_board_mismatch
    except ImportError:
        return ""
    imgs = [img for k, (_, img) in enumerate(FrameSource.open(path).frames()) if k % 5 == 0][:10]
    return diagnose_board_mismatch(imgs, board)


def _check_detections(dets: list[CameraDetections], board: BoardSpec, paths: list[Path] | None) -> list[str]:
    """Raise for cameras that never saw the board (all named, with a diagnosis); return warnings."""
    warnings = []
    problems = []
    for i, d in enumerate(dets):
        if d.inverted_frames:
            warnings.append(f"camera {d.name}: the board's markers were found only with inverted polarity in "
                            f"{len(d.inverted_frames)} frames; the board file says inverted = "
                            f"{str(board.inverted).lower()}: set inverted = {str(not board.inverted).lower()}")
        if d.observations:
            continue
        msg = f"camera {d.name}: no board found in any of its {d.n_frames} frames"
        if d.marker_ids_seen:
            msg += (f", although ArUco markers of {board.dictionary} with ids {sorted(d.marker_ids_seen)[:30]} were "
                    "seen: the board file probably does not match the printed board")
        elif board.type == "charuco":
            msg += f"; no ArUco marker of {board.dictionary} was seen either"
        if board.type == "charuco" and not problems:  # one diagnosis is enough: it is the same board
            hint = _diagnosis(paths[i] if paths else None, board)
            if hint:
                msg += "\n" + hint
        problems.append(msg)
    if problems:
        raise CalibrationFailure("\n".join(problems))
    return warnings


# --------------------------------------------------------------------------- adjustment set-up
def _build_observations(dets: list[CameraDetections], board: BoardSpec, frames: list[int]):
    """Flatten detections in frames that have a board pose into bundle-adjustment rows."""
    from .bundle_adjust import Observations

    pose_index = {f: i for i, f in enumerate(frames)}
    prev = np.zeros(len(frames), np.int64)
    nxt = np.zeros(len(frames), np.int64)
    stencil = np.zeros((len(frames), 3))
    fset = set(frames)
    for i, f in enumerate(frames):
        m = next((f - k for k in range(1, MAX_STENCIL_GAP + 1) if f - k in fset), None)
        p = next((f + k for k in range(1, MAX_STENCIL_GAP + 1) if f + k in fset), None)
        prev[i] = pose_index[m] if m is not None else i
        nxt[i] = pose_index[p] if p is not None else i
        if m is not None and p is not None:
            stencil[i] = [-1.0 / (p - m), 0.0, 1.0 / (p - m)]
        elif p is not None:
            stencil[i] = [0.0, -1.0 / (p - f), 1.0 / (p - f)]
        elif m is not None:
            stencil[i] = [-1.0 / (f - m), 1.0 / (f - m), 0.0]
    corners = board.corner_points()
    cols: dict[str, list] = {k: [] for k in ("camera", "pose", "corner_id", "pixel", "frame")}
    for c, d in enumerate(dets):
        for o in d.observations:
            if o.frame not in pose_index:
                continue
            n = len(o.ids)
            cols["camera"].append(np.full(n, c))
            cols["pose"].append(np.full(n, pose_index[o.frame]))
            cols["frame"].append(np.full(n, o.frame))
            cols["corner_id"].append(o.ids)
            cols["pixel"].append(o.pixels)
    cam = np.concatenate(cols["camera"]).astype(np.int64)
    pose = np.concatenate(cols["pose"]).astype(np.int64)
    cid = np.concatenate(cols["corner_id"]).astype(np.int64)
    return Observations(cam, pose, prev[pose], nxt[pose], stencil[pose], corners[cid],
                        np.concatenate(cols["pixel"]).astype(np.float64),
                        np.concatenate(cols["frame"]).astype(np.int64), cid)


def _intrinsic_vector(cam: Camera) -> FloatArray:
    v = np.zeros(9)
    v[:4] = [cam.matrix[0, 0], cam.matrix[1, 1], cam.matrix[0, 2], cam.matrix[1, 2]]
    v[4:4 + min(5, cam.dist.size)] = cam.dist[:5]
    return v


def _camera_from_vectors(template: Camera, intr: FloatArray, ext: FloatArray, offset_s: float) -> Camera:
    k = np.array([[intr[0], 0.0, intr[2]], [0.0, intr[1], intr[3]], [0.0, 0.0, 1.0]])
    n = 4 if template.model == "fisheye" else 5
    return Camera(template.name, template.image_size, k, intr[4:4 + n], rodrigues_to_matrix(ext[:3]),
                  ext[3:].copy(), template.model, offset_s)


# --------------------------------------------------------------------------- main entry points
def calibrate_rig(paths: list[str | Path], board: BoardSpec, options: CalibrationOptions | None = None,
                  progress: Progress | None = _stderr_progress) -> CalibrationResult:
    """Calibrate a rig from one recording (video or image folder) per camera."""
    options = options or CalibrationOptions()
    paths = [Path(p) for p in paths]
    if not paths:
        raise CalibrationInputError("no inputs: give one video file or image folder per camera")
    t0 = time.perf_counter()
    dets, fps = detect_sources(paths, board, options.workers, progress)
    t_detect = time.perf_counter() - t0
    result = calibrate_from_detections(dets, board, options, fps=options.fps or fps, progress=progress,
                                       paths=paths)
    result.report["timing_s"]["detection"] = round(t_detect, 3)
    result.report["timing_s"]["total"] = round(time.perf_counter() - t0, 3)
    result.report["inputs"] = [str(p) for p in paths]
    return result


def calibrate_from_detections(dets: list[CameraDetections], board: BoardSpec,
                              options: CalibrationOptions | None = None, fps: float | None = None,
                              progress: Progress | None = _stderr_progress,
                              paths: list[Path] | None = None) -> CalibrationResult:
    """Calibrate from board detections (one :class:`CameraDetections` per camera)."""
    options = options or CalibrationOptions()
    if options.sync not in ("estimate", "index"):
        raise CalibrationInputError(f"sync must be 'estimate' or 'index', got {options.sync!r}")
    fps = float(fps or 30.0)
    say = progress or (lambda _m: None)
    timing: dict[str, float] = {}
    warnings = _check_detections(dets, board, paths)
    names = [d.name for d in dets]

    # 1. intrinsics ----------------------------------------------------------------------------
    t = time.perf_counter()
    intr: list[IntrinsicsResult] = []
    for d in dets:
        if options.fixed_intrinsics is not None:
            try:
                fixed = options.fixed_intrinsics[d.name].copy()
            except KeyError:
                raise CalibrationInputError(
                    f"--fix-intrinsics: the rig has no camera named {d.name!r} "
                    f"(it has {', '.join(options.fixed_intrinsics.names)})") from None
            if tuple(fixed.image_size) != tuple(d.image_size):
                raise CalibrationInputError(
                    f"--fix-intrinsics: camera {d.name} is {d.image_size[0]}x{d.image_size[1]} in the recording "
                    f"but {fixed.image_size[0]}x{fixed.image_size[1]} in the fixed rig")
            fixed = fixed.with_pose(np.eye(3), np.zeros(3))
            poses, rej = board_poses(fixed, d.observations, board)
            intr.append(IntrinsicsResult(fixed, float("nan"), [], poses, rej))
        else:
            say(f"intrinsics: {d.name} from {len(d.observations)} views")
            intr.append(calibrate_intrinsics(d.name, d.observations, board, d.image_size, options.model,
                                             options.seed))
    timing["intrinsics"] = round(time.perf_counter() - t, 3)
    report: dict = {"format": "posestudio-calibration-report", "format_version": 1,
                    "board": {"type": board.type, "squares": [board.squares_x, board.squares_y],
                              "square_length_m": board.square_length, "dictionary": board.dictionary,
                              "inverted": board.inverted, "legacy": board.legacy},
                    "options": {"model": options.model, "sync": options.sync, "origin_frame": options.origin_frame,
                                "seed": options.seed, "fps": fps},
                    "timing_s": timing, "warnings": warnings}
    if options.intrinsics_only:
        cams = [r.camera for r in intr]
        rig = CameraRig(cams, {"world_frame": "none (intrinsics only)", "tool": "posestudio calibrate"})
        report["cameras"] = {r.camera.name: dict(_camera_entry(r, dets[i]), focal_px=list(r.camera.focal),
                                                  principal_point_px=list(r.camera.principal_point),
                                                  distortion=r.camera.dist.tolist())
                              for i, r in enumerate(intr)}
        return CalibrationResult(rig, report, dets)

    # 2. initial extrinsics ----------------------------------------------------------------------
    t = time.perf_counter()
    init = initialise_extrinsics(names, [r.board_poses for r in intr])
    timing["initialisation"] = round(time.perf_counter() - t, 3)
    frames = sorted(init.boards)
    say(f"extrinsics: camera graph rooted at {names[init.root]}, {len(frames)} board poses")

    # 3. bundle adjustment -------------------------------------------------------------------------
    from .bundle_adjust import AdjustmentOptions, RigParameters, adjust

    t = time.perf_counter()
    obs = _build_observations(dets, board, frames)
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
    # and rejects outliers), then intrinsics jointly, then time offsets. Starting the joint solve
    # near its optimum keeps distortion terms that few corners constrain from wandering.
    stages = [AdjustmentOptions(refine_intrinsics=False, estimate_offsets=False, reference_camera=init.root, rounds=1)]
    if refine:
        # Outliers are only decided in the last stage (its model is the best one).
        stages.append(AdjustmentOptions(refine_intrinsics=True, estimate_offsets=False, reference_camera=init.root,
                                        rounds=1 if options.sync == "estimate" else 2))
    if options.sync == "estimate":
        stages.append(AdjustmentOptions(refine_intrinsics=refine, estimate_offsets=True, reference_camera=init.root,
                                        rounds=2))
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
    res.iterations = iterations
    timing["bundle_adjustment"] = round(time.perf_counter() - t, 3)

    # 4. cameras and world frame -------------------------------------------------------------------
    p = res.params
    cams = [_camera_from_vectors(intr[i].camera, p.intrinsics[i], p.extrinsics[i], p.offsets[i] / fps)
            for i in range(len(dets))]
    board_to_world = {f: (rodrigues_to_matrix(p.poses[i, :3]), p.poses[i, 3:]) for i, f in enumerate(frames)}
    if options.origin_frame is not None:
        if options.origin_frame not in board_to_world:
            seen = [f for f in frames if abs(f - options.origin_frame) <= 10]
            raise CalibrationInputError(
                f"--origin-frame {options.origin_frame}: the board has no solved pose in that frame "
                f"(nearby frames with a pose: {seen or 'none'})")
        world: WorldFrame = world_frame_from_board(*board_to_world[options.origin_frame], options.origin_frame)
    else:
        world = default_world_frame(cams, [tb for _, tb in board_to_world.values()])
    cams = [world.apply(c) for c in cams]
    if options.scene_points is not None:
        if options.origin_frame is not None:
            raise CalibrationInputError("give either --origin-frame or --scene-points, not both")
        names_sp, world_sp, pixels_sp = read_scene_points(options.scene_points, names)
        world, report["scene_points"] = world_frame_from_scene_points(CameraRig(cams), names_sp, world_sp,
                                                                      pixels_sp, str(options.scene_points))
        cams = [world.apply(c) for c in cams]
    rig = CameraRig(cams, {"world_frame": world.description, "tool": "posestudio calibrate", "fps": fps,
                           "reference_camera": names[init.root]})

    # 5. report --------------------------------------------------------------------------------------
    residual = np.linalg.norm(res.residuals, axis=1)
    per_cam_rms = {n: float(np.sqrt(np.mean(residual[res.observations.camera == c] ** 2)))
                   for c, n in enumerate(names)}
    offsets = {}
    for c, n in enumerate(names):
        std = res.offset_std[c] if res.offset_std.size else np.nan
        offsets[n] = {"frames": round(float(p.offsets[c]), 4), "ms": round(float(p.offsets[c] / fps * 1000), 3),
                      "std_ms": None if not np.isfinite(std) else round(float(std / fps * 1000), 3)}
        if options.sync == "estimate" and c != init.root:
            if abs(p.offsets[c]) > 0.5:
                warnings.append(f"camera {n}: estimated time offset {p.offsets[c]:.2f} frames "
                                f"({p.offsets[c] / fps * 1000:.1f} ms) is large: check that its frames are paired "
                                "correctly (a dropped frame at the start shows as an offset near 1 frame)")
            if np.isfinite(std) and std > 0.1:
                warnings.append(f"camera {n}: time offset uncertain (+/- {std / fps * 1000:.1f} ms): the board moved "
                                "too little while this camera saw it")
    report["reference_camera"] = names[init.root]
    report["world_frame"] = world.description
    report["reprojection_rms_px"] = float(np.sqrt(np.mean(residual**2)))
    report["time_offsets"] = offsets
    report["camera_graph"] = {"pair_shared_views": {f"{names[i]}-{names[j]}": int(init.pair_counts[i, j])
                                                    for i in range(len(names)) for j in range(i + 1, len(names))},
                              "tree": [[names[a], names[b]] for a, b in init.tree_edges]}
    report["cameras"] = {}
    for c, r in enumerate(intr):
        entry = _camera_entry(r, dets[c])
        entry.update({"reprojection_rms_px": per_cam_rms[names[c]],
                      "corners_used": int((res.observations.camera == c).sum()),
                      "focal_px": list(cams[c].focal), "principal_point_px": list(cams[c].principal_point),
                      "centre_m": cams[c].center.tolist(), "time_offset_ms": offsets[names[c]]["ms"]})
        report["cameras"][names[c]] = entry
    report["rejected_corners"] = [dict(r, camera=names[r["camera"]]) for r in res.rejected]
    report["adjustment"] = {"iterations": res.iterations, "converged": bool(res.converged),
                            "corners": int(len(res.observations)), "board_poses": len(frames)}
    t = time.perf_counter()
    report["board_size_error"] = board_size_error(rig, dets, board)
    if options.sync == "estimate":
        report["board_size_error_time_aligned"] = board_size_error(rig, dets, board, time_aligned=True)
    timing["quality"] = round(time.perf_counter() - t, 3)
    warnings.extend(_coverage_warnings(dets, intr))
    return CalibrationResult(rig, report, dets)


def _camera_entry(r: IntrinsicsResult, d: CameraDetections) -> dict:
    reasons: dict[str, int] = {}
    for _, why in d.rejected:
        reasons[why] = reasons.get(why, 0) + 1
    return {"image_size": list(d.image_size), "frames": d.n_frames, "board_frames": len(d.observations),
            "intrinsic_rms_px": None if not np.isfinite(r.rms) else round(r.rms, 4),
            "intrinsic_views": r.views_used,
            "rejected_frames": {"count": len(d.rejected), "by_reason": reasons},
            "rejected_poses": [{"frame": f, "reason": why} for f, why in r.rejected],
            "coverage": coverage_grid(d).tolist()}


def coverage_grid(d: CameraDetections, cells: tuple[int, int] = (16, 9)) -> NDArray[np.int64]:
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


def _coverage_warnings(dets: list[CameraDetections], intr: list[IntrinsicsResult]) -> list[str]:
    out = []
    for d in dets:
        grid = coverage_grid(d)
        frac = float((grid > 0).mean())
        if frac < 0.5:
            out.append(f"camera {d.name}: the board covered only {frac:.0%} of the image; distortion near the "
                       "edges is poorly constrained: move the board through the corners of this view")
        if len(d.observations) < 10:
            out.append(f"camera {d.name}: only {len(d.observations)} board views; 20 or more at varied angles "
                       "are recommended")
    return out
