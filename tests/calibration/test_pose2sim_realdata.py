"""Real-data checks on ../shared/data: Qualisys and caliscope imports, the video-size mismatch."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.calibration.resolution_check import explain_mismatches, hypotheses, reprojection_rms, source_sizes
from posestudio.calibration.rig_formats import import_rig
from posestudio.cli import main

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEMO = DATA / "pose2sim_demo_single"
POINTS = Path(__file__).resolve().parent / "data" / "pose2sim_demo_points.toml"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")]


def load_points(names: list[str]) -> np.ndarray:
    doc = tomllib.loads(POINTS.read_text())
    return np.array([[tab[c] for tab in doc["points"].values()] for c in names], dtype=float)


def first_frame(cam: str) -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO / "videos" / f"{cam}.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def qualisys_rig():
    return import_rig(DEMO / "calibration" / "Calib.qca.txt")


@pytest.fixture(scope="module")
def video_sizes():
    return source_sizes({f"cam0{i}": DEMO / "videos" / f"cam0{i}.mp4" for i in range(1, 5)})


def test_qualisys_import(qualisys_rig) -> None:
    rig = qualisys_rig
    assert rig.names == ["cam01", "cam02", "cam03", "cam04"]
    for cam in rig:
        assert cam.image_size == (1088, 1920)
        fx, fy = cam.focal
        assert 1600 < fx < 1750 and abs(fx - fy) < 1.0
        cx, cy = cam.principal_point
        assert abs(cx - 544) < 40 and abs(cy - 960) < 40
        # Every camera looks at the treadmill near the world origin, from 1.7-2.1 m high.
        assert 1.5 < cam.center[2] < 2.2
        assert cam.world_to_camera(np.zeros(3))[2] > 2.0
        assert cam.in_image(cam.project(np.zeros(3)))
    np.testing.assert_allclose(rig["cam01"].center, [1.4602323709, -1.9091590482, 1.8965058524], atol=1e-9)


def test_points_triangulate_consistently(qualisys_rig, video_sizes) -> None:
    """Hand-located bolts: the calibration reproduces them to ~10 px (its own accuracy here)."""
    rig = qualisys_rig
    px = load_points(rig.names)
    report = explain_mismatches(rig, video_sizes, px)
    rms, errs = reprojection_rms(report.rig.cameras, px)
    assert rms < 12.0 and np.nanmax(errs) < 20.0
    # Upside-down or mirrored conventions give far larger errors.
    flipped = [c.copy() for c in rig]
    for c in flipped:
        c.matrix[1, 2] = 1919 - c.matrix[1, 2]
        c.matrix[0, 2] = 1087 - c.matrix[0, 2]
    assert reprojection_rms(flipped, px)[0] > 2 * rms


def test_mismatch_detected_and_explained(qualisys_rig, video_sizes) -> None:
    rig = qualisys_rig
    assert video_sizes == {"cam01": (1080, 1920), "cam02": (1080, 1920), "cam03": (1088, 1920),
                           "cam04": (1088, 1920)}
    pairs = {c: (cv2.imread(str(DEMO / "calibration" / "extrinsics" / f"{c}_ext.png"), cv2.IMREAD_GRAYSCALE),
                 first_frame(c)) for c in ("cam01", "cam02")}
    report = explain_mismatches(rig, video_sizes, load_points(rig.names), pairs)
    assert [m.camera for m in report.mismatches] == ["cam01", "cam02"]
    text = "\n".join(report.lines())
    assert "1080x1920" in text and "1088x1920" in text
    for cam in ("cam01", "cam02"):
        scores = report.scores[cam]
        assert report.chosen[cam].name == "rescale_fit"
        assert scores["rescale_fit"] < 1.0 and min(v for k, v in scores.items() if k != "rescale_fit") > 1.5
        adj = report.rig[cam]
        assert adj.image_size == (1080, 1920)
        s = 1080 / 1088
        np.testing.assert_allclose(adj.focal, np.array(rig[cam].focal) * s)
        np.testing.assert_allclose(adj.principal_point[1], s * (rig[cam].principal_point[1] + 0.5) - 0.5 + (1920 - 1920 * s) / 2,
                                   atol=1e-9)
    assert report.rig["cam03"].image_size == (1088, 1920)


def test_hypotheses_map_consistently() -> None:
    hyps = {h.name: h for h in hypotheses((1088, 1920), (1080, 1920))}
    assert set(hyps) == {"crop_left", "crop_right", "crop_centre", "stretch", "rescale_fit"}
    np.testing.assert_allclose(hyps["crop_left"].map_pixels(np.array([8.0, 5.0])), [0.0, 5.0])
    np.testing.assert_allclose(hyps["crop_centre"].map_pixels(np.array([4.0, 5.0])), [0.0, 5.0])
    # The image's outer edges (-0.5 .. W-0.5) map onto the recorded image's edges.
    np.testing.assert_allclose(hyps["rescale_fit"].map_pixels(np.array([1087.5, -0.5]))[0], 1079.5)


def test_cli_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    videos = [str(DEMO / "videos" / f"cam0{i}.mp4") for i in range(1, 5)]
    code = main(["rig", "check", str(DEMO / "calibration" / "Calib.qca.txt"), *videos, "--points", str(POINTS),
                 "--adjusted", str(tmp_path / "adj.toml")])
    out = capsys.readouterr().out
    assert code == 0 and "cam01: frames are 1080x1920" in out and (tmp_path / "adj.toml").is_file()


def test_caliscope_config_import() -> None:
    path = DATA / "caliscope_session" / "config.toml"
    rig = import_rig(path)
    doc = tomllib.loads(path.read_text())
    assert rig.names == ["cam_0", "cam_1", "cam_2", "cam_3"]
    for cam in rig:
        tab = doc[cam.name]
        assert cam.image_size == (1280, 720)
        np.testing.assert_array_equal(cam.matrix, tab["matrix"])
        np.testing.assert_array_equal(cam.dist, tab["distortions"])
        np.testing.assert_array_equal(cam.rotation, tab["rotation"])
        np.testing.assert_array_equal(cam.translation, tab["translation"])
        assert 0.5 < np.linalg.norm(cam.center) < 2.0  # webcams about a metre from the origin
