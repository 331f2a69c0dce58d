"""A synthetic multi-camera performance on disk: videos of rendered people with known 3D and 2D truth.

:func:`write_performance` renders a rig over people's motions (:func:`~.body_render.render_take`)
and writes, atomically (a temporary folder renamed into place; nothing half-written on failure)::

    OUT/videos/<camera>.mp4      one video per rig camera (BGR, the rig's image sizes)
    OUT/rig.toml                 the true cameras (posestudio.core.rig_file)
    OUT/truth_points3d.npz       the subject's (person 0) H36M17 joints, metres (core.keypoints_file)
    OUT/truth_keypoints2d.npz    the subject's exact 2D joints per camera; confidence = visibility 1/0
    OUT/truth_people.npz         everyone: points3d (P, F, 17, 3), keypoints2d (P, C, F, 17, 3)
    OUT/performance.json         the summary :func:`write_performance` returns

:func:`performance_bodies` chooses the people: a Bandai motion-capture clip as the subject when
``../shared/data/bandai_mocap_1`` exists, else the procedural walk of :mod:`.body_motion`, and a
second person 1.5-2.5 m away.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.bvh import read_bvh
from posestudio.core.errors import InputError
from posestudio.core.files import write_json, write_npz_atomic
from posestudio.core.keypoints_file import Keypoints2D, Points3D, write_keypoints2d, write_points3d
from posestudio.core.rig import CameraRig
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, bandai_to_h36m17
from posestudio.models.keypoints import H36M17

from .body_motion import walking_body
from .body_render import Appearance, render_take
from .render_augment import RenderOptions

__all__ = ["performance_bodies", "write_performance"]


def _resample(clip: FloatArray, clip_fps: float, frames: int, fps: float) -> FloatArray:
    """``(frames, 17, 3)`` of ``clip`` at ``fps`` by linear interpolation, played back and forth past its end."""
    n = len(clip)
    if n == 1:
        return np.repeat(clip.astype(np.float64), frames, axis=0)
    pos = np.arange(frames) / fps * clip_fps
    pos = np.mod(pos, 2 * (n - 1))
    pos = np.where(pos > n - 1, 2 * (n - 1) - pos, pos)
    i0 = np.clip(np.floor(pos).astype(int), 0, n - 2)
    a = (pos - i0)[:, None, None]
    return clip[i0] * (1 - a) + clip[i0 + 1] * a


def _placed(body: FloatArray, centre_xy: FloatArray, yaw: float) -> FloatArray:
    """``body`` ``(F, 17, 3)`` turned by ``yaw`` radians about Z and moved so its mean pelvis is at ``centre_xy``."""
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    mean = np.array([*np.nanmean(body[:, 0, :2], axis=0), 0.0])
    return (body - mean) @ rz.T + np.array([*centre_xy, 0.0])


def _bandai_clips(root: Path) -> dict[str, tuple[FloatArray, float]]:
    """Every Bandai clip in ``root``: name -> (``(F, 17, 3)`` metres, frames per second)."""
    out = {}
    for path in sorted(root.glob("*.bvh")):
        motion = read_bvh(path)
        out[path.stem] = (bandai_to_h36m17(motion), motion.fps)
    return out


def performance_bodies(frames: int = 90, fps: float = 30.0, people: int = 1, clip: str | None = None, seed: int = 0,
                       bandai_dir: str | Path | None = None) -> tuple[list[FloatArray], list[str]]:
    """The people of a synthetic performance (metres, Z up, floor at ``z = 0``).

    The subject is a Bandai clip (``clip``, or a seeded choice among clips that stay within 2.5 m)
    when the Bandai folder holds BVH files, else a slow straight walk through the centre
    (:func:`~.body_motion.walking_body`). A second person is another clip (or a walk past) placed
    1.5-2.5 m from the subject, turned at random. Clips are resampled to ``fps`` and played back
    and forth when shorter than the take; each person is centred on its mean pelvis position.

    Args:
        frames: frames of the take; fps: its frame rate, Hz.
        people: 1 or 2.
        clip: Bandai clip name (file stem; a unique substring is enough), or None.
        seed: seeds the choices.
        bandai_dir: folder of Bandai BVH files (default :data:`DEFAULT_BANDAI_DIR`).
    Returns:
        ``([(frames, 17, 3) per person], [source name per person])``.
    Raises:
        InputError: unknown clip, or a clip asked for without the Bandai data.
    """
    if people not in (1, 2):
        raise InputError(f"people must be 1 or 2, got {people}")
    if frames < 1 or not fps > 0:
        raise InputError(f"frames must be at least 1 and fps positive, got {frames} frames at {fps} fps")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x9E4F]))
    root = Path(bandai_dir) if bandai_dir is not None else DEFAULT_BANDAI_DIR
    clips = _bandai_clips(root) if root.is_dir() else {}
    if clip is not None and not clips:
        raise InputError(f"clip {clip!r}: no Bandai clips in {root}")
    bodies, names = [], []
    if clips:
        calm = [n for n, (c, _) in clips.items() if np.ptp(c[:, 0, :2], axis=0).max() < 2.5 and len(c) >= 30]
        if clip is not None:
            match = [n for n in clips if n == clip] or [n for n in clips if clip in n]
            if len(match) != 1:
                hint = f"matches {', '.join(match[:5])}" if match else f"known e.g. {', '.join(list(clips)[:4])}"
                raise InputError(f"clip {clip!r}: {'ambiguous' if match else 'no such Bandai clip'} ({hint})")
            subject = match[0]
        else:
            subject = calm[int(rng.integers(len(calm)))] if calm else sorted(clips)[0]
        names.append(subject)
        bodies.append(_placed(_resample(clips[subject][0], clips[subject][1], frames, fps), np.zeros(2), 0.0))
        if people == 2:
            others = [n for n in calm if n != subject] or [n for n in clips if n != subject] or [subject]
            other = others[int(rng.integers(len(others)))]
            names.append(other)
            bodies.append(_resample(clips[other][0], clips[other][1], frames, fps))
    else:
        speed = 0.6
        heading = rng.uniform(0, 360)
        h = np.radians(heading)
        half = 0.5 * speed * (frames - 1) / fps
        names.append("walking_body")
        bodies.append(walking_body(frames, fps, speed, (-half * np.cos(h), -half * np.sin(h)), heading))
        if people == 2:
            names.append("walking_body")
            bodies.append(walking_body(frames, fps, 0.5, (0.0, 0.0), rng.uniform(0, 360)))
    if people == 2:
        away = rng.uniform(0, 2 * np.pi)
        spot = np.nanmean(bodies[0][:, 0, :2], axis=0) + rng.uniform(1.5, 2.5) * np.array([np.cos(away), np.sin(away)])
        bodies[1] = _placed(bodies[1], spot, rng.uniform(0, 2 * np.pi))
    return [b.astype(np.float64) for b in bodies], names


def write_performance(out_dir: str | Path, rig: CameraRig, bodies: Sequence[FloatArray], fps: float = 30.0,
                      options: RenderOptions | None = None, seed: int | None = None, codec: str = "mp4v", *,
                      appearances: Sequence[Appearance] | None = None, overwrite: bool = False,
                      progress: Callable[[int, int], None] | None = None, sources: Sequence[str] | None = None) -> dict:
    """Render and write a multi-camera performance with its truth (layout in the module docstring).

    Args:
        out_dir: output folder; must not exist or be empty unless ``overwrite``.
        rig: the cameras (names become the video file names).
        bodies: per person ``(F, 17, 3)`` H36M17 world positions, metres; person 0 is the subject.
        fps: frame rate of the videos and truth files, Hz.
        options: rendering options (None: defaults); seed: seeds the rendering (None: ``options.seed``).
        codec: OpenCV FourCC of the videos (default ``"mp4v"``).
        appearances: per person (None: random); overwrite: replace a non-empty ``out_dir``.
        progress: called as ``progress(frames_done, frames_total)`` after every frame.
        sources: per person, where the motion came from (recorded in the summary).
    Returns:
        The summary (also written to ``performance.json``): paths, frames, fps, cameras, image sizes,
        people, the subject's visible-joint share per camera, seconds.
    Raises:
        InputError: ``out_dir`` not empty, a codec OpenCV cannot write, bad bodies.
    """
    start = time.perf_counter()
    options = (options or RenderOptions()).check()
    seed = options.seed if seed is None else int(seed)
    out = Path(out_dir)
    arr = [np.asarray(b, np.float64) for b in bodies]
    if not arr or any(b.ndim != 3 or b.shape[1:] != (17, 3) for b in arr):
        raise InputError("bodies: expected a non-empty list of (F, 17, 3) arrays of H36M17 joints in metres")
    n_frames = arr[0].shape[0]
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: already exists and is not empty (choose another folder or overwrite it)")
    if len(codec) != 4:
        raise InputError(f"codec must be a four-character code such as 'mp4v', got {codec!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        (tmp / "videos").mkdir()
        writers = []
        try:
            for cam in rig.cameras:
                path = tmp / "videos" / f"{cam.name}.mp4"
                writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*codec), float(fps),
                                         cam.image_size)
                if not writer.isOpened():
                    raise InputError(f"codec {codec!r}: OpenCV cannot write {path.name} with it")
                writers.append(writer)
            labels = np.empty((len(arr), len(rig), n_frames, 17, 3), np.float32)
            for f, images, lab in render_take(rig, arr, options, seed, appearances=appearances):
                for writer, img in zip(writers, images):
                    writer.write(img)
                labels[:, :, f] = lab
                if progress is not None:
                    progress(f + 1, n_frames)
        finally:
            for writer in writers:
                writer.release()
        summary = _write_truth(tmp, out, rig, arr, labels, fps, seed, sources)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        write_json(tmp / "performance.json", summary)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _write_truth(tmp: Path, out: Path, rig: CameraRig, bodies: list[FloatArray], labels: np.ndarray, fps: float,
                 seed: int, sources: Sequence[str] | None) -> dict:
    """Write the rig and truth files into ``tmp``; the summary names their final paths under ``out``."""
    rig.save(tmp / "rig.toml")
    joints = list(H36M17.joints)
    subject = bodies[0]
    write_points3d(tmp / "truth_points3d.npz", Points3D(subject, np.isfinite(subject).all(-1).astype(float),
                                                        joints, float(fps)))
    files = {"rig": out / "rig.toml", "truth_points3d": out / "truth_points3d.npz",
             "truth_people": out / "truth_people.npz", "summary": out / "performance.json"}
    kp = labels[0].astype(np.float64)  # (C, F, 17, 3): x, y, visibility
    if np.isfinite(kp[..., :2]).any():
        write_keypoints2d(tmp / "truth_keypoints2d.npz", Keypoints2D(kp, rig.names, joints, float(fps)))
        files["truth_keypoints2d"] = out / "truth_keypoints2d.npz"
    write_npz_atomic(tmp / "truth_people.npz", points3d=np.stack(bodies), keypoints2d=labels,
                     camera_names=np.array(rig.names), joint_names=np.array(joints), fps=np.float64(fps))
    with np.errstate(invalid="ignore"):
        seen = np.nan_to_num(kp[..., 2]).mean(axis=(1, 2))
    return {
        "out_dir": str(out), "videos": {c.name: str(out / "videos" / f"{c.name}.mp4") for c in rig.cameras},
        "files": {k: str(v) for k, v in files.items()}, "frames": int(subject.shape[0]), "fps": float(fps),
        "cameras": rig.names, "image_sizes": {c.name: list(c.image_size) for c in rig.cameras},
        "people": len(bodies), "sources": list(sources) if sources is not None else None, "seed": int(seed),
        "subject_visible_share": {name: round(float(v), 3) for name, v in zip(rig.names, seen)},
    }


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` folder to ``out``, replacing an existing ``out`` only after it is complete."""
    if not out.exists():
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
