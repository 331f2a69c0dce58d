"""2D detection on real footage and what it does to the 3D: BlazePose and our TCE network.

Run from the repository root: ``.venv/bin/python -m benchmarks.detection`` (``make bench`` does).

Part 1, real footage (``../shared/data/pose2sim_demo_single``: 4 cameras, 100 frames, 60 fps,
Qualisys calibration, a bystander at the back of the room). Each detector's 2D goes through
``posestudio reconstruct --videos``'s code path; the table gives coverage (frames with all 17
joints), the median reprojection error of the output (pixels, in 1920-pixel-high frames), the
bone-length CV, and a measure that does not grade itself: reconstruct from three cameras,
project into the fourth, compare with the fourth camera's own 2D (leave-one-camera-out, median
pixels, each camera in turn). Pose2Sim's triangulation + filtering on the same 2D is scored the
same way in the same run. The detector's error statistics against the leave-one-out reprojection
(spread, frame-to-frame correlation, per-joint bias, outliers, left/right swaps) are printed too:
they set the benchmark's realistic-detector mode (``benchmarks/reconstruction.py``) and the TCE
training augmentations.

Part 2 (``--tce``), TCE against BlazePose and its own single-frame ablation: PCK on held-out
rendered sequences (sharp, blurred, occluded), temporal jitter (mean keypoint acceleration) and
ms/frame; on the real clip the leave-one-camera-out error before and after bootstrapping on the
other frames (multi-view pseudo-labels from frames the held-out ones are not in).

Overlay pictures a person can check go to ``--figures`` (default ``benchmarks/figures``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from benchmarks.tables import print_table
from posestudio.calibration.rig_formats import import_rig
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_cv
from posestudio.models.detectors.backends import create_detector
from posestudio.models.keypoints import H36M17, keypoints_for_rig
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.videos import VideoKeypoints, detect_videos
from posestudio.reconstruction.view_agreement import DetectorErrorStats, leave_one_camera_out
from posestudio.viewer.overlay import write_overlays

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEMO = DATA / "pose2sim_demo_single"


@dataclass
class RealRow:
    """One method's scores on the real clip (pixels unless said)."""

    method: str
    coverage: float
    reprojection_median_px: float
    bone_cv: float
    loo_median_px: dict[str, float]
    ms_per_view_frame: float

    def cells(self) -> list[str]:
        loo = list(self.loo_median_px.values())
        return [self.method, f"{100 * self.coverage:.1f} %", f"{self.reprojection_median_px:.2f}", f"{100 * self.bone_cv:.2f} %",
                *(f"{v:.1f}" for v in loo), f"{np.mean(loo):.1f}",
                "" if not np.isfinite(self.ms_per_view_frame) else f"{self.ms_per_view_frame:.1f}"]


def full_skeleton_coverage(points: np.ndarray) -> float:
    """Share of frames with all joints, ``points (F, J, 3)``."""
    return float(np.isfinite(points).all(axis=(1, 2)).mean())


def reprojection_median(rig: CameraRig, kp17: np.ndarray, points: np.ndarray) -> float:
    """Median distance, pixels, between ``points (F, 17, 3)`` projected and the 2D ``kp17 (C, F, 17, 3)``."""
    return float(np.nanmedian(np.linalg.norm(rig.project(points) - kp17[..., :2], axis=-1)))


def score_real(name: str, rig: CameraRig, kp: Keypoints2D, ms: float,
               reconstruct_fn: Callable[[CameraRig, Keypoints2D], np.ndarray]) -> RealRow:
    """Score one 2D source and one 3D method on the real clip (leave-one-camera-out included)."""
    sub, kp17, _ = keypoints_for_rig(rig, kp, name)
    points = reconstruct_fn(sub, Keypoints2D(kp17, list(sub.names), list(H36M17.joints), kp.fps))
    loo = leave_one_camera_out(sub, kp, method=reconstruct_fn).median_px()
    return RealRow(name, full_skeleton_coverage(points), reprojection_median(sub, kp17, points),
                   float(np.nanmean(bone_length_cv(points, H36M17.bone_indices))), loo, ms)


def posestudio_3d(rig: CameraRig, kp: Keypoints2D) -> np.ndarray:
    return reconstruct(rig, kp).points.points3d


def pose2sim_3d(rig: CameraRig, kp: Keypoints2D) -> np.ndarray:
    from benchmarks.peers import pose2sim_peer  # optional peer: only where `make bench` installed it

    points, _, info = pose2sim_peer.triangulate(rig, kp.keypoints, kp.fps, list(kp.joint_names), filtering=True)
    if points is None:
        raise RuntimeError(f"Pose2Sim failed: {info['failure']}")
    return points


def pose2sim_available() -> bool:
    try:
        import Pose2Sim  # noqa: F401  (peer, installed by `make bench`)
    except ImportError:
        return False
    return True


def detect_real(name: str, rig: CameraRig, videos: list[Path], checkpoint: Path | None = None
                ) -> tuple[VideoKeypoints, float]:
    """A detector over the real clip through ``posestudio reconstruct --videos``'s 2D stage.

    Returns ``(result, milliseconds per view and frame)``; TCE runs on the CPU (``checkpoint``:
    default the shipped one).
    """
    kw = {"checkpoint": checkpoint, "device": "cpu"} if name == "tce" else {}
    det = create_detector(name, **kw)
    try:
        t0 = time.perf_counter()
        vk = detect_videos(rig, videos, det)
        seconds = time.perf_counter() - t0
    finally:
        det.close()
    return vk, 1e3 * seconds / (vk.detections.n_frames * len(videos))


def write_sheet(path: Path, vk: VideoKeypoints, points: Points3D, videos: list[Path]) -> None:
    """A downscaled contact sheet (JPEG) of detections and reprojected 3D."""
    tmp = path.parent / f".{path.stem}_overlay"
    files = write_overlays(tmp, vk.rig, videos, vk.keypoints, points, sheet_rows=3)
    sheet = cv2.imread(str(files[-1]))
    cv2.imwrite(str(path), cv2.resize(sheet, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 80])
    for f in files:
        f.unlink()
    tmp.rmdir()


def real_clip(args: argparse.Namespace) -> None:
    rig = import_rig(DEMO / "calibration" / "Calib.qca.txt")
    videos = sorted((DEMO / "videos").glob("cam0*.mp4"))
    print(f"\n## Real footage: {DEMO.name}, {len(videos)} cameras, Qualisys calibration\n")
    vk, ms = detect_real("blazepose", rig, videos)
    print(f"BlazePose (mediapipe 0.10.14, full model): {ms:.1f} ms per frame and view on this CPU "
          f"({os.cpu_count()} cores; two passes per frame: the second looks for another person)")
    if vk.size_report is not None:
        for cam, hyp in vk.size_report.chosen.items():
            scores = ", ".join(f"{k} {v:.1f}" for k, v in sorted(vk.size_report.scores[cam].items(), key=lambda kv: kv[1]))
            print(f"  size: {cam} {hyp.name} (median px: {scores})")
    print(f"  people followed: {vk.people.shape[0]}; most people seen in one view at once: {vk.detections.most_people()}")
    rows = [score_real("BlazePose -> PoseStudio", vk.rig, vk.keypoints, ms, posestudio_3d)]
    if pose2sim_available():
        rows.append(score_real("BlazePose -> Pose2Sim", vk.rig, vk.keypoints, float("nan"), pose2sim_3d))
    else:
        print("  (Pose2Sim is not installed: `make bench` installs it)")
    names = list(vk.keypoints.camera_names)
    header = ["2D -> 3D", "full skeletons", "reproj. median px", "bone CV", *(f"LOO {n}" for n in names), "LOO mean",
              "ms/frame/view"]
    print()
    print_table(header, [r.cells() for r in rows])
    ours = reconstruct(vk.rig, vk.keypoints)
    used = ours.report
    print(f"\nPoseStudio's reprojection median against the detections it used (left/right swaps undone, each "
          f"view's steady per-joint offset removed): {used.reprojection_median_px_all_detections:.2f} px; the table's "
          "column is against the raw detections; swaps corrected per camera: "
          + ", ".join(f"{c} {n}" for c, n in used.frames_with_left_right_swapped_per_camera.items()))
    loo = leave_one_camera_out(vk.rig, vk.keypoints)
    stats = DetectorErrorStats.measure(loo)
    print(f"\nBlazePose's errors as the other cameras see them (leave-one-out, confidence >= 0.5): "
          f"median {stats.median_px:.1f} px; noise {stats.noise_px:.1f} px (robust std) with lag-1 correlation "
          f"{stats.lag1_correlation:.2f}; fixed offset per joint and view {stats.bias_px:.1f} px (median); "
          f"{100 * stats.outlier_rate:.1f} % beyond {stats.outlier_px:.0f} px; left/right swapped in "
          f"{100 * stats.swap_rate:.1f} % of camera-frames")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        sheet = args.figures / "detection_real_blazepose.jpg"
        write_sheet(sheet, vk, ours.points, videos)
        print(f"overlay contact sheet: {sheet}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--figures", type=Path, default=Path(__file__).resolve().parent / "figures",
                    help="where overlay pictures go ('' for none)")
    ap.add_argument("--tce", action="store_true",
                    help="part 2 only: TCE against BlazePose and its single-frame ablation (benchmarks/detection_tce.py)")
    args = ap.parse_args(argv)
    if args.tce:
        from benchmarks.detection_tce import run as run_tce  # part 2 lives in its own module

        return run_tce(args)
    if not DEMO.is_dir():
        print(f"real data folder {DEMO} is absent; nothing to measure")
        return 1
    real_clip(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
