"""Videos in, 3D out: per-view 2D detection on recordings, then the 3D stages.

``reconstruct_videos`` matches recordings to the rig's cameras by file stem (a subset of the rig
works), decodes each recording once while a :class:`Detector2D` finds people per view, checks the
frames' sizes against the calibration (a mismatch is explained by cropping or rescaling, judged by
how consistently the detected people triangulate, or refused), follows the chosen subject among
the people found, writes ``keypoints2d.npz`` and runs the reconstruction on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from posestudio.calibration.resolution_check import ResolutionReport, explain_mismatches, find_mismatches, hypotheses
from posestudio.capture.sources import FrameSource
from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d, write_points3d
from posestudio.core.rig import CameraRig
from posestudio.models.detectors.base import Detector2D
from posestudio.models.detectors.run import Progress, VideoDetections, detect_sources
from posestudio.models.keypoints import get_layout, to_h36m17

from .options import ReconstructionOptions
from .people import PeopleOptions, track_people
from .pipeline import reconstruct
from .report import ReconstructionResult
from .triangulation import TriangulationOptions, triangulate_robust


class VideoInputError(InputError):
    """Recordings that cannot be used with the rig (the message names the file)."""


@dataclass
class VideoOptions:
    """How recordings become 2D keypoints.

    Attributes:
        max_size_error: a frame size that differs from the calibration is accepted only when the
            best explanation (crop or rescale) leaves that camera's detections within this median
            distance of the people the other cameras triangulate, as a fraction of the frame's
            diagonal (0.03: 66 px in 1080x1920; a detector's own disagreement between front and back
            views reaches 20-30 px there, while a wrong lens is off by hundreds); else it is refused.
        min_evidence_confidence: detections at least this confident are the evidence for that test.
        evidence_threshold_px: outlier threshold of the triangulation by the matching cameras, pixels.
        fps: frame rate when the recordings do not say (frames per second).
        people_gate: the people association's epipolar and reprojection gates, as a fraction of
            the largest frame side (0.03: 58 px in 1080x1920; real detectors disagree between
            views by 20-30 px there, while two people half a metre apart are hundreds apart).
        people: how people are associated across views and followed over time (its gates in
            pixels are replaced by ``people_gate``'s).
    """

    max_size_error: float = 0.03
    min_evidence_confidence: float = 0.7
    evidence_threshold_px: float = 20.0
    fps: float = 30.0
    people_gate: float = 0.03
    people: PeopleOptions = field(default_factory=PeopleOptions)


@dataclass
class VideoKeypoints:
    """The 2D stage's result.

    Attributes:
        keypoints: the subject's 2D keypoints, ready for the reconstruction.
        rig: the rig's cameras in the recordings' order, adjusted to the recorded frame sizes.
        size_report: what the size check found (``None`` when every size matched).
        detections: everything the detector found.
        people: every person followed, ``(T, C, F, J, 3)`` in the detector's layout (T = 1 when
            only one person was ever seen), and ``subject`` its index.
    """

    keypoints: Keypoints2D
    rig: CameraRig
    size_report: ResolutionReport | None
    detections: VideoDetections
    people: FloatArray
    subject: int

    def summary(self) -> dict[str, Any]:
        """What the 2D stage did, for ``report.json``."""
        d = self.detections
        kp = self.keypoints.keypoints
        found = np.isfinite(kp[..., 0]).mean(axis=2)  # (C, F) share of joints per frame
        return {
            "detector": d.detector, "layout": d.layout_name, "frames": d.n_frames,
            "seconds": round(d.seconds, 3), "ms_per_frame_per_view": round(1e3 * d.seconds / max(1, d.n_frames * len(d.camera_names)), 2),
            "people_followed": int(self.people.shape[0]), "subject": int(self.subject),
            "most_people_in_one_view": d.most_people(),
            "cameras": {name: {"frames_with_subject": int((found[i] > 0).sum()),
                               "image_size": list(d.image_sizes[i])} for i, name in enumerate(d.camera_names)},
            "size_adjustments": ({} if self.size_report is None else
                                 {c: h.description for c, h in self.size_report.chosen.items()}),
        }


def match_videos(rig: CameraRig, videos: Sequence[str | Path]) -> list[FrameSource]:
    """Open each recording and check that its stem names a camera of ``rig``, each camera at most once.

    Raises:
        VideoInputError: no videos, a name the rig does not know, a camera given twice.
        SourceError: a recording that is missing or cannot be decoded.
    """
    if not videos:
        raise VideoInputError("no videos given")
    sources = [FrameSource.open(v) for v in videos]
    seen: dict[str, Path] = {}
    for s in sources:
        if s.name not in rig.names:
            raise VideoInputError(f"{s.path}: no camera {s.name!r} in the rig (cameras: {', '.join(rig.names)}); "
                                  "name each recording after its camera")
        if s.name in seen:
            raise VideoInputError(f"{s.path}: camera {s.name!r} is already given by {seen[s.name]}")
        seen[s.name] = s.path
    return sources


def fit_rig_to_frames(rig: CameraRig, sources: Sequence[FrameSource], detections: VideoDetections,
                      options: VideoOptions) -> tuple[CameraRig, ResolutionReport | None]:
    """The rig with each camera's intrinsics for its recorded frame size.

    A size that differs from the calibration is explained with the hypotheses of
    :mod:`posestudio.calibration.resolution_check` (crop, stretch, rescale and pad). Each is judged
    by the median distance between that camera's confident detections and the people
    triangulated robustly by the cameras whose size matches (left/right swaps and gross errors
    do not move a median); without two such cameras, by the RMS over all views
    (:func:`~posestudio.calibration.resolution_check.explain_mismatches`).

    Raises:
        VideoInputError: naming the recording whose size no hypothesis explains within
            ``options.max_size_error``.
    """
    sizes = dict(zip(detections.camera_names, detections.image_sizes))
    mismatches = find_mismatches(rig, sizes)
    if not mismatches:
        return rig, None
    keypoints = detections.first_person()
    confident = np.where((keypoints[..., 2] >= options.min_evidence_confidence)[..., None], keypoints[..., :2], np.nan)
    bad = {m.camera for m in mismatches}
    matching = [i for i, n in enumerate(rig.names) if n not in bad]
    if len(matching) < 2:
        report = explain_mismatches(rig, sizes, confident.reshape(len(rig), -1, 2))
        errors = {m.camera: report.scores.get(m.camera, {}) for m in mismatches}
    else:
        report = ResolutionReport(mismatches)
        tri = triangulate_robust(rig.subset([rig.names[i] for i in matching]), keypoints[matching],
                                 TriangulationOptions(min_confidence=options.min_evidence_confidence,
                                                      threshold_px=options.evidence_threshold_px))
        errors = {}
        cams = list(rig.cameras)
        for m in mismatches:
            i = rig.names.index(m.camera)
            errors[m.camera] = {h.name: _median_distance(h.adjust(rig.cameras[i], m.actual), tri.points, confident[i])
                                for h in hypotheses(m.calibrated, m.actual)}
            report.scores[m.camera] = errors[m.camera]
            report.evidence[m.camera] = ("median distance of its detections to people triangulated by "
                                         f"{', '.join(rig.names[j] for j in matching)}")
            best = min(errors[m.camera], key=lambda k: np.nan_to_num(errors[m.camera][k], nan=np.inf))
            report.chosen[m.camera] = next(h for h in hypotheses(m.calibrated, m.actual) if h.name == best)
            cams[i] = report.chosen[m.camera].adjust(rig.cameras[i], m.actual)
        report.rig = CameraRig(cams, {**rig.metadata, "resolution_adjustments":
                                      {k: h.name for k, h in report.chosen.items()}})
    for m in mismatches:
        path = sources[detections.camera_names.index(m.camera)].path
        best = report.chosen.get(m.camera)
        err = errors.get(m.camera, {}).get(best.name, np.nan) if best else np.nan
        limit = options.max_size_error * float(np.hypot(*m.actual))
        if report.rig is None or best is None or not err <= limit:
            how = (f"the best, {best.name}, leaves the detections {err:.1f} px off" if best and np.isfinite(err)
                   else "too few people were detected to judge")
            raise VideoInputError(f"{path}: {m.describe()}; no crop or rescale explains it ({how}, more than "
                                  f"{limit:.0f} px); record at the calibrated size or recalibrate")
    return report.rig, report


def _median_distance(camera: Camera, points: FloatArray, pixels: FloatArray) -> float:
    """Median distance, pixels, between ``camera``'s projections of ``points (..., 3)`` and ``pixels (..., 2)``."""
    d = np.linalg.norm(camera.project(points) - pixels, axis=-1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size >= 10 else float("nan")


def follow_subject(rig: CameraRig, detections: VideoDetections, fps: float,
                   options: PeopleOptions) -> tuple[FloatArray, int]:
    """Everyone followed across views and time, and which of them is the subject.

    Returns:
        ``(people (T, C, F, J, 3) in the detector's layout, subject index)``.
    """
    layout = get_layout(detections.layout_name)
    if detections.most_people() <= 1:
        return detections.first_person()[None], 0
    joints = list(layout.joints)
    candidates = [[to_h36m17(p, layout, joints) if len(p) else np.zeros((0, 17, 3)) for p in row]
                  for row in detections.people]
    tracks = track_people(candidates, rig, fps, options)
    tracks.for_subject()  # raises, naming the problem, when nobody was seen by two cameras at once
    native = np.full((tracks.n_tracks, len(rig), detections.n_frames, layout.n_joints, 3), np.nan)
    for t, c, f in zip(*np.nonzero(tracks.detections >= 0)):
        native[t, c, f] = detections.people[f][c][tracks.detections[t, c, f]]
    return native, tracks.subject


def detect_videos(rig: CameraRig, videos: Sequence[str | Path], detector: Detector2D,
                  options: VideoOptions | None = None, progress: Progress | None = None) -> VideoKeypoints:
    """Decode and detect the recordings, fit the rig to their sizes and follow the subject.

    Args:
        rig: the calibrated rig; the recordings may be any subset of its cameras.
        videos: one recording per camera, named after it (``cam01.mp4`` for camera ``cam01``), frame
            ``i`` of every recording exposed at the same instant.
        detector: the 2D backend.
        options: see :class:`VideoOptions`.
        progress: called after each frame with ``(done, total)``.
    Raises:
        VideoInputError / SourceError: naming the recording at fault.
    """
    options = options or VideoOptions()
    sources = match_videos(rig, videos)
    detections = detect_sources(sources, detector, progress)
    sub = rig.subset([s.name for s in sources])
    fitted, size_report = fit_rig_to_frames(sub, sources, detections, options)
    fps = detections.fps or options.fps
    gate = options.people_gate * max(max(size) for size in detections.image_sizes)
    people_options = replace(options.people, epipolar_gate_px=gate, reprojection_gate_px=gate)
    people, subject = follow_subject(fitted, detections, fps, people_options)
    layout = get_layout(detections.layout_name)
    kp = Keypoints2D(people[subject], list(detections.camera_names), list(layout.joints), float(fps))
    return VideoKeypoints(kp, fitted, size_report, detections, people, subject)



@dataclass
class VideoReconstruction:
    """What :func:`run_video_reconstruction` made: the 2D stage and the subject's reconstruction
    (``people_results[k]`` for every person followed when all people were asked for)."""

    video: VideoKeypoints
    result: ReconstructionResult
    people_results: dict[int, ReconstructionResult] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def run_video_reconstruction(rig: CameraRig, videos: Sequence[str | Path], out_dir: str | Path,
                             detector: Detector2D, options: ReconstructionOptions | None = None,
                             video_options: VideoOptions | None = None, all_people: bool = False,
                             progress: Progress | None = None) -> VideoReconstruction:
    """Recordings to ``OUT/keypoints2d.npz``, ``OUT/points3d.npz`` and ``OUT/report.json``.

    Also ``OUT/rig.toml``: the rig actually used (adjusted where frame sizes made it change), so
    that the viewer and exporters find the cameras beside the take; with ``all_people`` ``OUT/people/person_<k>/`` (the same three files) for every person followed.
    Nothing is written unless detection and reconstruction succeeded; each file is atomic.
    """
    video = detect_videos(rig, videos, detector, video_options, progress)
    result = reconstruct(video.rig, video.keypoints, options, "videos")
    result.report.detection = video.summary()
    others: dict[int, tuple[Keypoints2D, ReconstructionResult]] = {}
    if all_people:
        for k in range(video.people.shape[0]):
            if k == video.subject:
                continue
            kp = Keypoints2D(video.people[k], video.keypoints.camera_names, video.keypoints.joint_names,
                             video.keypoints.fps)
            if np.isfinite(kp.keypoints[..., 0]).any(axis=2).sum(axis=0).max(initial=0) < 2:
                continue  # never seen by two cameras at once: nothing to triangulate
            others[k] = (kp, reconstruct(video.rig, kp, options, f"videos (person {k})"))
    out = Path(out_dir)
    files = _write_take(out, video.keypoints, result)
    video.rig.save(out / "rig.toml")
    files.append(out / "rig.toml")
    for k, (kp, res) in others.items():
        files += _write_take(out / "people" / f"person_{k}", kp, res)
    return VideoReconstruction(video, result, {k: res for k, (_, res) in others.items()}, files)


def _write_take(out: Path, kp: Keypoints2D, result: ReconstructionResult) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_keypoints2d(out / "keypoints2d.npz", kp)
    write_points3d(out / "points3d.npz", result.points)
    result.report.write(out / "report.json")
    return [out / "keypoints2d.npz", out / "points3d.npz", out / "report.json"]
