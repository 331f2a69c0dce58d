"""Check a rig's image sizes against the recorded videos, and explain a mismatch.

A calibration made at one resolution is wrong for frames of another: a 1088-pixel-wide
calibration used on 1080-pixel-wide video puts every point several pixels off. The recorder may
have cropped columns (on the left, the right, or both sides), stretched the image, or scaled it
uniformly and padded the other axis (letterbox). Each is a change of pixel coordinates
``u' = s * (u + 0.5) - 0.5 + o`` per axis (pixel centres at integers), i.e. a new intrinsic matrix.

:func:`find_mismatches` names the mismatches; :func:`explain_mismatches` decides, from pixel
observations of the same points in several views, which hypothesis makes them triangulate
consistently (smallest RMS reprojection error) and returns the adjusted rig.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.capture.sources import FrameSource
from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.dlt import triangulate_dlt
from posestudio.core.rig import CameraRig

from .errors import CalibrationFailure


@dataclass(frozen=True)
class SizeMismatch:
    """A camera whose frames differ in size from its calibration (pixels, ``(width, height)``)."""

    camera: str
    calibrated: tuple[int, int]
    actual: tuple[int, int]

    def describe(self) -> str:
        (cw, ch), (aw, ah) = self.calibrated, self.actual
        parts = []
        if cw != aw:
            parts.append(f"{abs(cw - aw)} {'fewer' if aw < cw else 'more'} columns")
        if ch != ah:
            parts.append(f"{abs(ch - ah)} {'fewer' if ah < ch else 'more'} rows")
        return (f"camera {self.camera}: frames are {aw}x{ah} but the calibration is for {cw}x{ch} "
                f"({' and '.join(parts)}); its intrinsics do not apply as they are")


@dataclass(frozen=True)
class Hypothesis:
    """How calibrated pixels map to recorded pixels: ``u' = scale * (u + 0.5) - 0.5 + offset``.

    Attributes:
        name: short id (``crop_left``, ``crop_right``, ``crop_centre``, ``stretch``, ``rescale_fit``).
        description: in words.
        scale: ``(sx, sy)``.
        offset: ``(ox, oy)`` in recorded pixels.
    """

    name: str
    description: str
    scale: tuple[float, float]
    offset: tuple[float, float]

    def map_pixels(self, pixels: FloatArray) -> FloatArray:
        """Calibrated-image pixels ``(..., 2)`` to recorded-image pixels ``(..., 2)``."""
        s, o = np.asarray(self.scale), np.asarray(self.offset)
        return s * (np.asarray(pixels, float) + 0.5) - 0.5 + o

    def adjust(self, cam: Camera, actual: tuple[int, int]) -> Camera:
        """The camera with K changed for recorded frames of size ``actual``."""
        (sx, sy), (ox, oy) = self.scale, self.offset
        k = cam.matrix.copy()
        k[0] = [sx * k[0, 0], sx * k[0, 1], sx * (k[0, 2] + 0.5) - 0.5 + ox]
        k[1] = [0.0, sy * k[1, 1], sy * (k[1, 2] + 0.5) - 0.5 + oy]
        return replace(cam.copy(), matrix=k, image_size=(int(actual[0]), int(actual[1])))


def hypotheses(calibrated: tuple[int, int], actual: tuple[int, int]) -> list[Hypothesis]:
    """Candidate explanations of a size change ``calibrated -> actual`` (``(w, h)`` pixels)."""
    (cw, ch), (aw, ah) = calibrated, actual
    out: list[Hypothesis] = []
    dx, dy = cw - aw, ch - ah
    if dx >= 0 and dy >= 0:  # cropping can only remove pixels
        for name, fx, words in (("crop_left", 1.0, "taken from the left"), ("crop_right", 0.0, "taken from the right"),
                                ("crop_centre", 0.5, "taken equally from both sides")):
            out.append(Hypothesis(name, f"cropped: {dx} columns and {dy} rows {words} (top for rows)"
                                  if name != "crop_centre" else f"cropped: {dx} columns and {dy} rows {words}",
                                  (1.0, 1.0), (-fx * dx, -(0.5 if name == "crop_centre" else (1.0 if name == "crop_left" else 0.0)) * dy)))
    out.append(Hypothesis("stretch", f"rescaled to {aw}x{ah} without keeping the aspect ratio",
                          (aw / cw, ah / ch), (0.0, 0.0)))
    s = min(aw / cw, ah / ch)
    pad = (aw - s * cw, ah - s * ch)
    if abs(aw / cw - ah / ch) > 1e-9:
        out.append(Hypothesis("rescale_fit", f"rescaled uniformly by {s:.5f} and padded "
                              f"({pad[0] / 2:.1f} px columns, {pad[1] / 2:.1f} px rows each side)",
                              (s, s), (pad[0] / 2, pad[1] / 2)))
    return out


def source_sizes(sources: Mapping[str, str | Path]) -> dict[str, tuple[int, int]]:
    """``{camera: (width, height)}`` of the first frame of each source (video file or image folder)."""
    return {name: FrameSource.open(path).image_size() for name, path in sources.items()}


def find_mismatches(rig: CameraRig, sizes: Mapping[str, tuple[int, int]]) -> list[SizeMismatch]:
    """Cameras of ``rig`` whose recorded size (``sizes[name]``, ``(w, h)``) differs from the calibration."""
    return [SizeMismatch(cam.name, cam.image_size, tuple(map(int, sizes[cam.name])))
            for cam in rig if cam.name in sizes and tuple(map(int, sizes[cam.name])) != cam.image_size]


def _undistort(cam: Camera, pixels: FloatArray) -> FloatArray:
    """Distorted pixels ``(N, 2)`` (NaN allowed) to normalised coordinates ``(N, 2)``."""
    out = np.full_like(pixels, np.nan, dtype=float)
    ok = np.isfinite(pixels).all(axis=1)
    if ok.any():
        src = np.ascontiguousarray(pixels[ok], dtype=np.float64).reshape(-1, 1, 2)
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
        if cam.model == "fisheye":
            und = cv2.fisheye.undistortPoints(src, cam.matrix, cam.dist, criteria=crit)
        else:
            und = cv2.undistortPoints(src, cam.matrix, cam.dist, None, None, None, crit)
        out[ok] = und.reshape(-1, 2)
    return out


def reprojection_rms(cameras: Sequence[Camera], pixels: FloatArray) -> tuple[float, FloatArray]:
    """Triangulate with all views and reproject.

    Args:
        cameras: C cameras.
        pixels: ``(C, N, 2)`` observations, NaN where unseen.
    Returns:
        ``(rms, errors)``: RMS over observed points (pixels) and ``(C, N)`` errors.
    """
    normed = np.stack([_undistort(c, p) for c, p in zip(cameras, pixels)])
    pts = triangulate_dlt(np.stack([c.projection_matrix for c in cameras]), normed)
    errs = np.linalg.norm(np.stack([c.project(pts) for c in cameras]) - pixels, axis=-1)
    return float(np.sqrt(np.nanmean(errs**2))), errs


@dataclass
class ResolutionReport:
    """Result of :func:`explain_mismatches`.

    Attributes:
        mismatches: the size mismatches found.
        scores: ``{camera: {hypothesis name: error in pixels}}`` (see ``evidence``).
        evidence: ``{camera: what decided}``.
        chosen: ``{camera: Hypothesis}`` with the smallest error.
        rig: the rig with those cameras adjusted (K and image_size).
        rms_before / rms_after: RMS reprojection error of all views, pixels, with sizes ignored /
            after adjustment (NaN without observations).
    """

    mismatches: list[SizeMismatch]
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: dict[str, Hypothesis] = field(default_factory=dict)
    rig: CameraRig | None = None
    rms_before: float = float("nan")
    rms_after: float = float("nan")
    evidence: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The findings in words, one line each."""
        if not self.mismatches:
            return ["all image sizes match the calibration"]
        out = [m.describe() for m in self.mismatches]
        for cam, hyp in self.chosen.items():
            ranked = sorted(self.scores[cam].items(), key=lambda kv: kv[1])
            runner = f"; next best {ranked[1][0]} {ranked[1][1]:.2f} px" if len(ranked) > 1 else ""
            out.append(f"camera {cam}: best explained as {hyp.name} ({hyp.description}): "
                       f"{ranked[0][1]:.2f} px{runner} [{self.evidence.get(cam, '')}]")
        if len(self.chosen) < len(self.mismatches):
            out.append("no evidence (points or reference stills) for some cameras: cannot tell crop "
                       "from rescale; the calibration must not be used on these frames as it is")
        if np.isfinite(self.rms_after):
            out.append(f"RMS reprojection of the given points: {self.rms_before:.2f} px as calibrated, "
                       f"{self.rms_after:.2f} px adjusted")
        return out


def explain_mismatches(rig: CameraRig, sizes: Mapping[str, tuple[int, int]],
                       pixels: FloatArray | None = None,
                       image_pairs: Mapping[str, tuple[NDArray[np.uint8], NDArray[np.uint8]]] | None = None,
                       ) -> ResolutionReport:
    """Find size mismatches and decide which hypothesis explains each.

    Two kinds of evidence: point correspondences (``pixels``: the hypothesis whose adjusted
    camera gives the smallest RMS reprojection error of points triangulated with the matching
    cameras wins) and, more precise where available, a still taken at the calibrated size
    (``image_pairs[camera] = (reference, frame)``, see :func:`score_by_image`), which then decides.

    Args:
        rig: the calibrated rig.
        sizes: ``{camera: (width, height)}`` of the recorded frames.
        pixels: ``(C, N, 2)`` recorded-image pixels of N points per rig camera (NaN where
            unseen), or None.
        image_pairs: ``{camera: (reference still (H, W) grey, recorded frame (h, w) grey)}``, or None.
    Returns:
        a :class:`ResolutionReport`; ``report.rig`` is the adjusted rig (None when a mismatch
        could not be explained for lack of evidence).
    """
    report = ResolutionReport(find_mismatches(rig, sizes))
    if not report.mismatches:
        report.rig = rig
        return report
    image_pairs = image_pairs or {}
    if pixels is not None:
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.ndim != 3 or pixels.shape[0] != len(rig) or pixels.shape[2] != 2:
            raise ValueError(f"pixels must have shape ({len(rig)}, N, 2) for the rig's cameras, got {pixels.shape}")
    cams = [c.copy() for c in rig.cameras]
    if pixels is not None:
        report.rms_before = reprojection_rms(cams, pixels)[0]
    index = {c.name: i for i, c in enumerate(cams)}
    bad = {m.camera for m in report.mismatches}
    ref = [i for i, c in enumerate(cams) if c.name not in bad]
    for m in report.mismatches:
        i = index[m.camera]
        cands = hypotheses(m.calibrated, m.actual)
        if m.camera in image_pairs:
            scores = score_by_image(*image_pairs[m.camera], cands)
            report.evidence[m.camera] = "reference still vs recorded frame (median feature distance)"
        elif pixels is not None:
            # Judge against the matching cameras when two or more exist, else against all views.
            use = ref + [i] if len(ref) >= 2 else list(range(len(cams)))
            scores = {}
            for hyp in cands:
                trial = list(cams)
                trial[i] = hyp.adjust(rig.cameras[i], m.actual)
                scores[hyp.name] = reprojection_rms([trial[j] for j in use], pixels[use])[0]
            report.evidence[m.camera] = "point correspondences (RMS reprojection error)"
        else:
            continue
        best = next(h for h in cands if h.name == min(scores, key=scores.get))
        report.scores[m.camera] = scores
        report.chosen[m.camera] = best
        cams[i] = best.adjust(rig.cameras[i], m.actual)
    if len(report.chosen) < len(report.mismatches):
        return report
    if pixels is not None:
        report.rms_after = reprojection_rms(cams, pixels)[0]
    meta = dict(rig.metadata)
    meta["resolution_adjustments"] = {k: h.name for k, h in report.chosen.items()}
    report.rig = CameraRig(cams, meta)
    return report


def score_by_image(reference: NDArray[np.uint8], frame: NDArray[np.uint8],
                   candidates: Sequence[Hypothesis]) -> dict[str, float]:
    """Score hypotheses by matching a still taken at the calibrated size with a recorded frame.

    Both images show the same static scene from the same camera (e.g. Pose2Sim's
    ``extrinsics/camXX_ext.png`` and frame 0 of the video). SIFT features are matched; each
    hypothesis maps the reference keypoints into the frame.

    Args:
        reference: ``(H, W)`` grey image at the calibrated size.
        frame: ``(h, w)`` grey recorded frame.
        candidates: hypotheses for this size change.
    Returns:
        ``{name: median pixel distance}`` between mapped and matched keypoints (RANSAC inliers).
    """
    sift = cv2.SIFT_create(4000)
    k1, d1 = sift.detectAndCompute(reference, None)
    k2, d2 = sift.detectAndCompute(frame, None)
    if d1 is None or d2 is None or len(k1) < 10 or len(k2) < 10:
        raise CalibrationFailure("too few image features to compare the reference still with the frame "
                                 f"({len(k1)} and {len(k2)}; at least 10 each): use a still of a textured scene")
    pairs = [m for m, n in cv2.BFMatcher().knnMatch(d1, d2, k=2) if m.distance < 0.7 * n.distance]
    if len(pairs) < 3:
        raise CalibrationFailure(f"the reference still and the frame share only {len(pairs)} distinctive features: "
                                 "are they the same camera's view of the same scene?")
    p1 = np.float64([k1[m.queryIdx].pt for m in pairs])
    p2 = np.float64([k2[m.trainIdx].pt for m in pairs])
    _, inl = cv2.estimateAffine2D(p1, p2, ransacReprojThreshold=2.0)
    keep = inl.ravel().astype(bool) if inl is not None else np.ones(len(p1), bool)
    return {h.name: float(np.median(np.linalg.norm(h.map_pixels(p1[keep]) - p2[keep], axis=1)))
            for h in candidates}
