"""2D overlays a person can check: detections and reprojected 3D drawn over each camera's video.

Green: the detector's keypoints and bones (dot size grows with confidence); magenta: the 3D
joints projected back through the calibration. Where the two agree, the calibration, the
detection and the triangulation agree. One video per camera and a contact sheet (cameras in
columns, a few instants in rows) as one PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from posestudio.capture.sources import FrameSource
from posestudio.core.arrays import FloatArray
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.core.rig import CameraRig
from posestudio.models.detectors.run import lockstep_frames
from posestudio.models.keypoints import H36M17, KeypointLayout, layout_from_joint_names

DETECTION_BGR = (60, 220, 60)
REPROJECTION_BGR = (220, 60, 220)


def draw_skeleton(image: np.ndarray, keypoints: FloatArray, layout: KeypointLayout, colour: tuple[int, int, int],
                  scale: float = 1.0, min_confidence: float = 0.0) -> None:
    """Draw ``(J, 2 or 3)`` keypoints (pixels of the full frame) and the layout's bones in place.

    ``scale`` maps full-frame pixels to ``image`` pixels; joints below ``min_confidence`` (third
    column) or NaN are skipped.
    """
    xy = keypoints[:, :2] * scale
    conf = keypoints[:, 2] if keypoints.shape[1] > 2 else np.ones(len(keypoints))
    ok = np.isfinite(xy).all(axis=1) & ~(conf < min_confidence)
    thickness = max(1, int(round(2 * image.shape[0] / 960)))
    for a, b in layout.bone_indices:
        if ok[a] and ok[b]:
            cv2.line(image, tuple(np.round(xy[a]).astype(int)), tuple(np.round(xy[b]).astype(int)), colour,
                     thickness, cv2.LINE_AA)
    for j in np.nonzero(ok)[0]:
        r = thickness + int(round(2 * thickness * float(np.clip(conf[j], 0, 1))))
        cv2.circle(image, tuple(np.round(xy[j]).astype(int)), r, colour, -1, cv2.LINE_AA)


def write_overlays(out_dir: str | Path, rig: CameraRig, videos: Sequence[str | Path], keypoints: Keypoints2D,
                   points: Points3D, max_height: int = 960, sheet_rows: int = 4,
                   progress: Callable[[int, int | None], None] | None = None) -> list[Path]:
    """Write ``OUT/<camera>.mp4`` for each recording and ``OUT/contact_sheet.png``.

    Args:
        out_dir: the overlay folder.
        rig: the rig the reconstruction used (sizes matching the recordings).
        videos: the recordings, named after cameras in ``keypoints.camera_names``.
        keypoints: the 2D keypoints that were triangulated (``(C, F, J, 3)``).
        points: the reconstruction (``(F, 17, 3)`` metres, H36M17).
        max_height: frames taller than this are scaled down, pixels.
        sheet_rows: instants on the contact sheet (evenly spaced over the take).
    Returns:
        the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = [FrameSource.open(v) for v in videos]
    order = [keypoints.camera_names.index(s.name) for s in sources]
    cams = rig.subset([s.name for s in sources])
    layout = layout_from_joint_names(keypoints.joint_names)
    joint_order = layout.indices([j.lower() for j in keypoints.joint_names])
    kp = np.empty_like(keypoints.keypoints)
    kp[..., joint_order, :] = keypoints.keypoints  # to the layout's own order
    reproj = cams.project(points.points3d)  # (C, F, 17, 2)
    n_frames = kp.shape[1]
    sheet_at = set(np.linspace(0, n_frames - 1, sheet_rows).round().astype(int).tolist())
    sheet: dict[int, list[np.ndarray]] = {}
    writers: list[cv2.VideoWriter] = []
    tmp_paths = [out / f".{s.name}.tmp.mp4" for s in sources]
    fps = keypoints.fps
    try:
        for f, frames in enumerate(lockstep_frames(sources)):
            if f >= n_frames:
                break
            drawn = []
            for v, frame in enumerate(frames):
                scale = min(1.0, max_height / frame.shape[0])
                img = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame.copy()
                draw_skeleton(img, kp[order[v], f], layout, DETECTION_BGR, scale)
                draw_skeleton(img, np.concatenate([reproj[v, f], np.ones((17, 1))], axis=1), H36M17,
                              REPROJECTION_BGR, scale)
                cv2.putText(img, f"{sources[v].name}  frame {f}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                            (255, 255, 255), 2, cv2.LINE_AA)
                drawn.append(img)
            if not writers:
                writers = [cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), fps, (im.shape[1], im.shape[0]))
                           for p, im in zip(tmp_paths, drawn)]
            for w, im in zip(writers, drawn):
                w.write(im)
            if f in sheet_at:
                sheet[f] = drawn
            if progress:
                progress(f + 1, n_frames)
    finally:
        for w in writers:
            w.release()
    files = []
    for s, tmp in zip(sources, tmp_paths):
        final = out / f"{s.name}.mp4"
        tmp.replace(final)
        files.append(final)
    sheet_path = out / "contact_sheet.png"
    _write_sheet(sheet_path, [sheet[f] for f in sorted(sheet)])
    files.append(sheet_path)
    return files


def _write_sheet(path: Path, rows: list[list[np.ndarray]], cell_height: int = 480) -> None:
    """Cameras in columns, instants in rows, each cell ``cell_height`` pixels high."""
    lines = []
    for row in rows:
        cells = [cv2.resize(im, (int(round(im.shape[1] * cell_height / im.shape[0])), cell_height)) for im in row]
        lines.append(np.hstack(cells))
    width = max(line.shape[1] for line in lines)
    sheet = np.vstack([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines])
    tmp = path.with_name("." + path.name + ".tmp.png")
    if not cv2.imwrite(str(tmp), sheet):
        raise OSError(f"{path}: could not write the contact sheet")
    tmp.replace(path)
