"""Synthetic takes: render every camera over a board trajectory, in memory or to files.

Timing convention (ground truth): camera ``c``'s frame ``f`` is exposed *centred* on
``f / fps + offset_c`` seconds of the reference clock, for ``exposure_fraction / fps`` seconds.
A positive offset means the camera's frames lag the reference clock, which is exactly
:attr:`Camera.time_offset` in the truth rig.

Files written by :func:`write_synthetic_session` into ``out_dir``:

- ``<cam>.mp4`` per camera (MPEG-4 Part 2 'mp4v', grey content; lossy, see ``VIDEO_FOURCC``) or, with
  ``video=False``, ``<cam>/000000.png ...`` (lossless);
- ``board.toml`` (the board file), ``truth_rig.toml`` (the true rig with time offsets);
- ``truth.json``: settings, seed, offsets, the trajectory's parameters and, per camera and
  frame, the exposure time, board-to-world pose (Rodrigues ``rvec`` radians, ``tvec`` metres),
  whether the printed face is towards the camera and the ids and true pixels of the corners
  inside the image on the printed side.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tomli_w
from numpy.typing import NDArray

from posestudio.calibration.board import BoardSpec, board_to_dict
from posestudio.core.arrays import FloatArray
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import matrix_to_rodrigues
from posestudio.core.worker_processes import worker_context

from .board_render import CameraRenderer, FrameInfo, make_board_texture
from .board_trajectory import BoardTrajectory, board_trajectory
from .studio_rig import make_studio_rig

TRUTH_FORMAT = "posestudio-synthetic-truth"
TRUTH_VERSION = 1
VIDEO_FOURCC = "mp4v"
#: OpenCV's FFmpeg 'mp4v' (MPEG-4 Part 2) at its default settings is already at the encoder's
#: finest quantiser for intra frames (about 40 dB PSNR on noisy 1080p studio frames; a higher
#: bit rate changes nothing measurable). Measured effect on detected ChArUco corners against the
#: lossless frames: median shift 0.07 px, 95th percentile 0.16 px. Use PNG folders for lossless.


def default_board() -> BoardSpec:
    """The default synthetic board: ChArUco 7 x 5 squares of 8 cm, 6 cm DICT_4X4_50 markers."""
    return BoardSpec("charuco", 7, 5, 0.08, 0.06, "DICT_4X4_50", source="<synthetic default>")


@dataclass
class RenderSettings:
    """How frames are made.

    Attributes:
        fps: frame rate, Hz.
        n_frames: frames per camera.
        blur: motion blur over the exposure (else an instantaneous exposure).
        exposure_fraction: exposure time as a fraction of the frame period.
        noise_sigma: Gaussian sensor noise, grey levels (0-255 scale).
        supersample: antialiasing taps per pixel along each axis.
        vignetting: relative darkening at the far image corner.
        seed: seeds the backgrounds, lighting, gains and noise.
    """

    fps: float = 30.0
    n_frames: int = 150
    blur: bool = True
    exposure_fraction: float = 0.25
    noise_sigma: float = 2.0
    supersample: int = 2
    vignetting: float = 0.25
    seed: int = 0

    @property
    def exposure_s(self) -> float:
        return self.exposure_fraction / self.fps if self.blur else 0.0


def frame_times(rig: CameraRig, n_frames: int, fps: float) -> FloatArray:
    """Exposure mid-times ``(C, F)`` seconds: ``f / fps + camera.time_offset``."""
    offsets = np.array([c.time_offset for c in rig.cameras])
    return np.arange(n_frames) / fps + offsets[:, None]


def truth_observations(rig: CameraRig, board: BoardSpec, trajectory: BoardTrajectory, times: FloatArray
                       ) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
    """Ground truth per camera and frame.

    Args:
        rig: the truth rig.
        board: the board.
        trajectory: board motion.
        times: ``(C, F)`` exposure mid-times, seconds.
    Returns:
        ``(R (C, F, 3, 3), t (C, F, 3), corners (C, F, N, 2), faces (C, F))``: board-to-world
        poses, true corner pixels (NaN outside the image, behind the camera or when the printed
        face is turned away) and whether the printed face is towards the camera.
    """
    c, f = times.shape
    rot, trans = trajectory.poses(times.ravel())
    rot, trans = rot.reshape(c, f, 3, 3), trans.reshape(c, f, 3)
    pts = board.corner_points()
    corners = np.empty((c, f, len(pts), 2))
    faces = np.empty((c, f), bool)
    for i, cam in enumerate(rig.cameras):
        world = np.einsum("fij,nj->fni", rot[i], pts) + trans[i][:, None]
        px = cam.project(world)
        # printed face visible when the camera centre is on the board's -z side
        normal_z = rot[i][:, :, 2]
        faces[i] = np.einsum("fj,fj->f", cam.center - trans[i], normal_z) < 0
        ok = cam.in_image(px) & faces[i][:, None]
        corners[i] = np.where(ok[..., None], px, np.nan)
    return rot, trans, corners, faces


@dataclass
class CameraTake:
    """Frames of one camera (in memory) or where they went, with per-frame render info.

    Attributes:
        name: camera name.
        frames: ``(F, H, W)`` uint8, or None when written to disk.
        path: the video file or image folder, or None.
        infos: one :class:`FrameInfo` per frame.
        seconds: wall time spent rendering (and writing), seconds.
    """

    name: str
    frames: NDArray[np.uint8] | None
    path: Path | None
    infos: list[FrameInfo]
    seconds: float


def _render_camera(index: int, rig: CameraRig, board: BoardSpec, trajectory: BoardTrajectory,
                   settings: RenderSettings, out: Path | None, video: bool, threads: int | None = None) -> CameraTake:
    """Render (and optionally write) one camera's take; the unit of parallel work."""
    if threads is not None:
        cv2.setNumThreads(threads)
    start = time.perf_counter()
    cam = rig.cameras[index]
    renderer = CameraRenderer(cam, board, make_board_texture(board), seed=settings.seed * 1000 + index,
                              supersample=settings.supersample, vignetting=settings.vignetting)
    times = frame_times(rig, settings.n_frames, settings.fps)[index]
    w, h = cam.image_size
    frames = None if out is not None else np.empty((settings.n_frames, h, w), np.uint8)
    writer = None
    if out is not None and video:
        writer = cv2.VideoWriter(str(out), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*VIDEO_FOURCC), settings.fps,
                                 (w, h), [cv2.VIDEOWRITER_PROP_IS_COLOR, 0])
        if not writer.isOpened():
            raise RuntimeError(f"{out}: OpenCV's FFmpeg cannot write {VIDEO_FOURCC!r} video")
    elif out is not None:
        out.mkdir(parents=True, exist_ok=True)
    infos = []
    try:
        for f, t in enumerate(times):
            rng = np.random.default_rng(np.random.SeedSequence([settings.seed, 0x0157, index, f]))
            img, info = renderer.render(trajectory, float(t), settings.exposure_s, settings.noise_sigma, rng)
            infos.append(info)
            if frames is not None:
                frames[f] = img
            elif writer is not None:
                writer.write(img)
            else:
                cv2.imwrite(str(out / f"{f:06d}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    finally:
        if writer is not None:
            writer.release()
    return CameraTake(cam.name, frames, out, infos, time.perf_counter() - start)


def render_take(rig: CameraRig, board: BoardSpec, trajectory: BoardTrajectory, settings: RenderSettings,
                workers: int = 1, out_paths: list[Path] | None = None, video: bool = True) -> list[CameraTake]:
    """Render every camera of ``rig`` over ``trajectory`` (frame times from :func:`frame_times`).

    Args:
        rig: the truth rig (``time_offset`` per camera sets its exposure times).
        board: the board.
        trajectory: board motion.
        settings: rendering settings.
        workers: processes (cameras are rendered in parallel; 1 = in this process).
        out_paths: per camera, a video file (``video=True``) or image folder to write instead of
            returning frames.
        video: see ``out_paths``.
    Returns:
        One :class:`CameraTake` per camera, in rig order (``frames`` ``(F, H, W)`` uint8 when
        ``out_paths`` is None).
    """
    outs = out_paths or [None] * len(rig)
    if workers <= 1 or len(rig) == 1:
        return [_render_camera(i, rig, board, trajectory, settings, outs[i], video) for i in range(len(rig))]
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context()) as pool:
        futures = [pool.submit(_render_camera, i, rig, board, trajectory, settings, outs[i], video, threads)
                   for i in range(len(rig))]
        return [fut.result() for fut in futures]


@dataclass
class SyntheticSession:
    """A generated take and its ground truth.

    Attributes:
        out_dir: folder written to (None for in-memory takes).
        rig: the truth rig (``time_offset`` per camera, seconds).
        board: the board.
        trajectory: the board motion (callable ``t -> (R, t)``).
        settings: rendering settings.
        times: ``(C, F)`` exposure mid-times, seconds.
        rotations, translations: ``(C, F, 3, 3)``, ``(C, F, 3)`` board-to-world poses at ``times``.
        corners: ``(C, F, N, 2)`` true corner pixels (NaN where not visible).
        faces_camera: ``(C, F)`` printed face towards the camera.
        takes: per-camera :class:`CameraTake` (frames or paths, render info, timing).
        paths: written files by role (``"board"``, ``"truth_rig"``, ``"truth"``, camera names).
        seconds: total wall time, seconds.
    """

    out_dir: Path | None
    rig: CameraRig
    board: BoardSpec
    trajectory: BoardTrajectory
    settings: RenderSettings
    times: FloatArray
    rotations: FloatArray
    translations: FloatArray
    corners: FloatArray
    faces_camera: NDArray[np.bool_]
    takes: list[CameraTake] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames(self) -> NDArray[np.uint8]:
        """``(C, F, H, W)`` uint8 frames of an in-memory take."""
        if any(t.frames is None for t in self.takes):
            raise ValueError("this take was written to files; read them with FrameSource")
        return np.stack([t.frames for t in self.takes])

    def visible_corner_counts(self) -> NDArray[np.int64]:
        """``(C, F)`` true corners inside the image on the printed side."""
        return np.isfinite(self.corners[..., 0]).sum(axis=-1)

    def partial_mask(self) -> NDArray[np.bool_]:
        """``(C, F)`` frames where the printed board is partly, not wholly, inside the image."""
        n = self.visible_corner_counts()
        return (n > 0) & (n < self.board.n_corners)

    def truth_dict(self) -> dict:
        """The ``truth.json`` document."""
        per_cam = {}
        for i, cam in enumerate(self.rig.cameras):
            rvecs = matrix_to_rodrigues(self.rotations[i])
            rows = []
            for f in range(self.times.shape[1]):
                px = self.corners[i, f]
                info = self.takes[i].infos[f] if self.takes else None
                rows.append({
                    "frame": f, "time_s": round(float(self.times[i, f]), 12),
                    "rvec": [round(float(v), 12) for v in rvecs[f]],
                    "tvec": [round(float(v), 12) for v in self.translations[i, f]],
                    "faces_camera": bool(self.faces_camera[i, f]),
                    "corner_ids": np.flatnonzero(np.isfinite(px[:, 0])).tolist(),
                    "corners_px": np.round(px[np.isfinite(px[:, 0])], 5).tolist(),
                    "motion_samples": None if info is None else info.n_samples,
                })
            per_cam[cam.name] = rows
        s = self.settings
        return {
            "format": TRUTH_FORMAT, "format_version": TRUTH_VERSION,
            "units": "metres; pixels (centres at integers); seconds; radians",
            "pose_convention": "board-to-world: X_world = R(rvec) @ X_board + tvec; board frame as in board.toml",
            "time_convention": "camera c frame f is exposed centred on f / fps + time_offsets_s[c]",
            "seed": s.seed, "fps": s.fps, "n_frames": s.n_frames, "exposure_s": s.exposure_s,
            "settings": asdict(s),
            "cameras": self.rig.names,
            "image_size": {c.name: list(c.image_size) for c in self.rig.cameras},
            "time_offsets_s": {c.name: float(c.time_offset) for c in self.rig.cameras},
            "video": ({"fourcc": VIDEO_FOURCC, "container": "mp4"}
                      if any(p.suffix == ".mp4" for p in self.paths.values()) else None),
            "corners": "per frame, corner_ids (row * corners_x + column) of the corners inside the image on "
                       "the printed side and their true pixels corners_px",
            "trajectory": self.trajectory.to_dict(),
            "frames": per_cam,
        }


def _parse_offsets(time_offsets_s, n_cameras: int, fps: float, seed: int) -> FloatArray:
    if time_offsets_s is None:
        return np.zeros(n_cameras)
    if isinstance(time_offsets_s, str):
        if time_offsets_s != "random":
            raise ValueError(f"time_offsets_s must be None, 'random' or a list of seconds, got {time_offsets_s!r}")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0FF5]))
        offs = rng.uniform(-0.5, 0.5, n_cameras) / fps
        offs[0] = 0.0
        return offs
    offs = np.asarray(time_offsets_s, float).ravel()
    if offs.size != n_cameras:
        raise ValueError(f"time_offsets_s has {offs.size} values for {n_cameras} cameras")
    return offs


def synthesize(n_cameras: int = 4, n_frames: int = 150, fps: float = 30.0,
               image_size: tuple[int, int] = (1920, 1080), seed: int = 0,
               time_offsets_s: list[float] | str | None = None, blur: bool = True, noise_sigma: float = 2.0,
               board: BoardSpec | None = None, distortion: str = "strong", fisheye: bool = False,
               rig: CameraRig | None = None, trajectory: BoardTrajectory | None = None,
               exposure_fraction: float = 0.25, supersample: int = 2, vignetting: float = 0.25,
               workers: int | None = 1, out_paths: list[Path] | None = None, video: bool = True,
               layout: str = "ring") -> SyntheticSession:
    """Make a synthetic take (frames in memory unless ``out_paths`` are given).

    See :func:`write_synthetic_session` for the arguments; ``rig`` and ``trajectory`` override
    the generated ones (``time_offsets_s`` then still sets the rig's offsets unless None).
    """
    start = time.perf_counter()
    board = board or default_board()
    if rig is None:
        rig = make_studio_rig(n_cameras, image_size, seed=seed, distortion=distortion, fisheye=fisheye,
                              layout=layout)
        offsets = _parse_offsets(time_offsets_s, len(rig), fps, seed)
    else:
        offsets = (np.array([c.time_offset for c in rig.cameras]) if time_offsets_s is None
                   else _parse_offsets(time_offsets_s, len(rig), fps, seed))
        rig = CameraRig([c.copy() for c in rig.cameras], dict(rig.metadata))
    for cam, off in zip(rig.cameras, offsets):
        cam.time_offset = float(off)
    rig.metadata.update({"generator": "posestudio synth", "seed": int(seed)})
    trajectory = trajectory or board_trajectory(board, n_frames / fps, seed=seed)
    settings = RenderSettings(fps=float(fps), n_frames=int(n_frames), blur=bool(blur),
                              exposure_fraction=float(exposure_fraction), noise_sigma=float(noise_sigma),
                              supersample=int(supersample), vignetting=float(vignetting), seed=int(seed))
    times = frame_times(rig, n_frames, fps)
    rot, trans, corners, faces = truth_observations(rig, board, trajectory, times)
    if workers is None:
        workers = min(len(rig), os.cpu_count() or 1)
    takes = render_take(rig, board, trajectory, settings, workers, out_paths, video)
    return SyntheticSession(None, rig, board, trajectory, settings, times, rot, trans, corners, faces, takes,
                            seconds=time.perf_counter() - start)


def write_synthetic_session(out_dir: str | Path, n_cameras: int = 4, n_frames: int = 150, fps: float = 30.0,
                            image_size: tuple[int, int] = (1920, 1080), seed: int = 0,
                            time_offsets_s: list[float] | str | None = None, blur: bool = True,
                            noise_sigma: float = 2.0, video: bool = True, board: BoardSpec | None = None,
                            distortion: str = "strong", fisheye: bool = False, rig: CameraRig | None = None,
                            exposure_fraction: float = 0.25, supersample: int = 2, vignetting: float = 0.25,
                            workers: int | None = None, layout: str = "ring") -> SyntheticSession:
    """Generate a synthetic multi-camera take with ground truth into ``out_dir``.

    Args:
        out_dir: output folder (created).
        n_cameras: cameras ``cam0 .. cam{n-1}`` (ignored when ``rig`` is given).
        n_frames: frames per camera.
        fps: frame rate, Hz.
        image_size: ``(width, height)`` pixels.
        seed: seeds the rig, motion, backgrounds and noise (same seed, identical output).
        time_offsets_s: per-camera sub-frame offsets in seconds (camera lags reference when > 0),
            ``"random"`` (uniform within half a frame, camera 0 at 0) or None (all 0).
        blur: motion blur over ``exposure_fraction / fps`` seconds.
        noise_sigma: Gaussian sensor noise, grey levels.
        video: write ``<cam>.mp4``; else ``<cam>/NNNNNN.png`` folders.
        board: the board (default :func:`default_board`).
        distortion, fisheye: lens family (see :func:`make_studio_rig`).
        rig: use this rig instead of generating one.
        exposure_fraction, supersample, vignetting: see :class:`RenderSettings`.
        workers: parallel processes (default: one per camera up to the CPU count).
        layout: camera layout, ``"ring"`` or ``"overhead"`` (see :func:`make_studio_rig`; ignored
            when ``rig`` is given).
    Returns:
        The :class:`SyntheticSession` (``paths`` lists the files).
    """
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(rig) if rig is not None else n_cameras
    names = rig.names if rig is not None else [f"cam{i}" for i in range(n)]
    outs = [out / (f"{name}.mp4" if video else name) for name in names]
    session = synthesize(n_cameras, n_frames, fps, image_size, seed, time_offsets_s, blur, noise_sigma, board,
                         distortion, fisheye, rig, None, exposure_fraction, supersample, vignetting, workers,
                         outs, video, layout)
    session.out_dir = out
    session.paths = {name: p for name, p in zip(names, outs)}
    board_path = out / "board.toml"
    board_path.write_text(tomli_w.dumps({"board": board_to_dict(session.board)}))
    session.rig.save(out / "truth_rig.toml")
    session.paths.update({"board": board_path, "truth_rig": out / "truth_rig.toml", "truth": out / "truth.json"})
    (out / "truth.json").write_text(json.dumps(session.truth_dict(), indent=1))
    session.seconds = time.perf_counter() - start
    return session


def load_truth(path: str | Path) -> dict:
    """Read ``truth.json``; adds ``"trajectory_obj"`` (a callable :class:`BoardTrajectory`)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != TRUTH_FORMAT:
        raise ValueError(f"{path}: not a PoseStudio synthetic truth file")
    doc["trajectory_obj"] = BoardTrajectory.from_dict(doc["trajectory"])
    return doc
