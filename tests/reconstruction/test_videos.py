"""Videos in, 3D out: recordings matched to the rig, frame sizes explained or refused, clear errors.

The end-to-end runs on real footage live in test_videos_realdata.py; here the rules, on small files.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.calibration.resolution_check import hypotheses
from posestudio.capture.sources import FrameSource, SourceError
from posestudio.core.rig import CameraRig
from posestudio.models.detectors.run import VideoDetections
from posestudio.reconstruction.videos import VideoInputError, VideoOptions, fit_rig_to_frames, match_videos
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None


def write_video(path: Path, n: int, size: tuple[int, int] = (96, 64)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for k in range(n):
        writer.write(np.full((size[1], size[0], 3), 5 * k, np.uint8))
    writer.release()
    return path


@pytest.fixture()
def rig() -> CameraRig:
    return make_studio_rig(3, image_size=(1280, 720), seed=3)


def test_recordings_are_matched_to_cameras_by_file_stem(tmp_path: Path, rig: CameraRig) -> None:
    a, c = rig.names[0], rig.names[2]
    sources = match_videos(rig, [write_video(tmp_path / f"{c}.avi", 2), write_video(tmp_path / f"{a}.avi", 2)])
    assert [s.name for s in sources] == [c, a]  # the recordings' order, a subset of the rig
    with pytest.raises(VideoInputError, match=r"nobody\.avi: no camera 'nobody' in the rig"):
        match_videos(rig, [write_video(tmp_path / "nobody.avi", 2)])
    (tmp_path / "again").mkdir()
    with pytest.raises(VideoInputError, match=rf"camera '{a}' is already given by"):
        match_videos(rig, [tmp_path / f"{a}.avi", write_video(tmp_path / "again" / f"{a}.avi", 2)])


def test_unreadable_recordings_are_named(tmp_path: Path, rig: CameraRig) -> None:
    broken = tmp_path / f"{rig.names[0]}.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(SourceError, match=rf"{broken.name}: cannot decode this file as video"):
        match_videos(rig, [broken])
    with pytest.raises(SourceError, match=r"missing\.mp4: no such file"):
        match_videos(rig, [tmp_path / "missing.mp4"])


def _detections(cameras: list, points: np.ndarray, names: list[str], sizes: list[tuple[int, int]]) -> VideoDetections:
    """Exact projections of ``points`` through ``cameras`` with 1 px noise, as a detector's output."""
    rng = np.random.default_rng(0)
    views = np.stack([cam.project(points) for cam in cameras]) + rng.normal(0, 1.0, (len(cameras),) + points.shape[:2] + (2,))
    kp = np.concatenate([views, np.full(views.shape[:-1] + (1,), 0.9)], axis=-1)
    people = [[kp[c, f][None] for c in range(len(cameras))] for f in range(points.shape[0])]
    return VideoDetections(people, names, sizes, "h36m17", "projection")


def test_a_rescaled_recording_is_explained_and_the_rig_adjusted(rig: CameraRig) -> None:
    points = walking_body(40, start=(-0.6, 0.0))
    calibrated = rig.cameras[1].image_size
    actual = (calibrated[0] // 2, calibrated[1] // 2)
    stretch = next(h for h in hypotheses(calibrated, actual) if h.name == "stretch")
    recorded = [rig.cameras[0], stretch.adjust(rig.cameras[1], actual), rig.cameras[2]]
    sizes = [c.image_size for c in recorded]
    dets = _detections(recorded, points, rig.names, sizes)
    sources = [FrameSource(Path(f"{n}.mp4"), n) for n in rig.names]
    fitted, report = fit_rig_to_frames(rig, sources, dets, VideoOptions())
    assert report is not None and report.chosen[rig.names[1]].name == "stretch"
    assert fitted.cameras[1].image_size == actual
    np.testing.assert_allclose(fitted.cameras[1].matrix, recorded[1].matrix, atol=1e-9)
    assert fitted.cameras[0] is rig.cameras[0] or np.allclose(fitted.cameras[0].matrix, rig.cameras[0].matrix)


def test_a_frame_size_no_crop_or_rescale_explains_is_refused_naming_the_file(rig: CameraRig) -> None:
    points = walking_body(40, start=(-0.6, 0.0))
    other = rig.cameras[1].copy()
    other.matrix = other.matrix * np.array([[0.6], [0.6], [1.0]])  # another lens entirely
    other.image_size = (700, 700)
    recorded = [rig.cameras[0], other, rig.cameras[2]]
    dets = _detections(recorded, points, rig.names, [c.image_size for c in recorded])
    sources = [FrameSource(Path(f"/takes/{n}.mp4"), n) for n in rig.names]
    with pytest.raises(VideoInputError, match=rf"/takes/{rig.names[1]}\.mp4: .*frames are 700x700 .* no crop or rescale explains it"):
        fit_rig_to_frames(rig, sources, dets, VideoOptions())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([POSESTUDIO, "reconstruct", *args], capture_output=True, text=True, timeout=300)


def test_the_command_refuses_bad_recordings_in_one_line_and_writes_nothing(tmp_path: Path, rig: CameraRig) -> None:
    rig.save(tmp_path / "rig.toml")
    out = tmp_path / "out"
    stray = write_video(tmp_path / "stray.avi", 3)
    res = _cli("--calibration", str(tmp_path / "rig.toml"), "--videos", str(stray), "--out", str(out))
    assert res.returncode == 2 and "stray.avi: no camera 'stray' in the rig" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe is not installed (make test installs it)")
def test_recordings_of_different_lengths_fail_before_anything_is_written(tmp_path: Path, rig: CameraRig) -> None:
    rig.save(tmp_path / "rig.toml")
    out = tmp_path / "out"
    a = write_video(tmp_path / f"{rig.names[0]}.avi", 6)
    b = write_video(tmp_path / f"{rig.names[1]}.avi", 4)
    res = _cli("--calibration", str(tmp_path / "rig.toml"), "--videos", str(a), str(b), "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert f"{b.name}: ends after 4 frames" in res.stderr and not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe is not installed (make test installs it)")
def test_two_rendered_people_are_kept_apart_and_the_subject_followed(tmp_path: Path) -> None:
    """Videos of a subject and a bystander -> the subject's skeleton, never the two fused."""
    from posestudio.core.pose_metrics import mpjpe_absolute
    from posestudio.models.detectors.backends import create_detector
    from posestudio.reconstruction.videos import run_video_reconstruction
    from posestudio.synthetic.performance import performance_bodies, write_performance

    rig = make_studio_rig(4, image_size=(960, 540), seed=2, distortion="mild")
    bodies, _ = performance_bodies(frames=24, fps=30.0, people=2, seed=1)
    write_performance(tmp_path / "take", rig, bodies, fps=30.0, seed=1)
    videos = [tmp_path / "take" / "videos" / f"{n}.mp4" for n in rig.names]
    detector = create_detector("blazepose", max_people=2)
    try:
        made = run_video_reconstruction(rig, videos, tmp_path / "out", detector, all_people=True)
    finally:
        detector.close()
    subject = made.result.points.points3d
    # Within a BlazePose-vs-renderer joint definition (several cm) of the subject, metres from the bystander.
    assert mpjpe_absolute(subject, bodies[0]) < 0.12
    assert mpjpe_absolute(subject, bodies[1]) > 0.8
    for k, other in made.people_results.items():
        assert mpjpe_absolute(other.points.points3d, bodies[1]) < 0.15, f"person {k} is not the bystander"
