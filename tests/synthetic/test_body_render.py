"""The body renderer: labels on the drawn body, visibility, out-of-image joints, crops, performances on disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.core.camera import Camera
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import read_keypoints2d, read_points3d
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.body_render import (
    Light,
    RenderOptions,
    crop_camera,
    random_appearance,
    render_frame,
    render_take,
    render_training_batch,
)
from posestudio.synthetic.performance import performance_bodies, write_performance
from posestudio.synthetic.render_augment import Occluder
from posestudio.synthetic.studio_rig import look_at, make_studio_rig

MAGENTA = (255, 0, 255)
#: No randomness that changes pixel values: exact colours for the tests that read pixels.
CLEAN = RenderOptions(noise_sigma=(0, 0), blur_prob=0, shake_prob=0, defocus_prob=0, occluder_prob=0, jpeg_prob=0,
                      gain=(1, 1), gamma=(1, 1), white_balance=0, black_level=(0, 0), shadows=False)
LIGHT = Light(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]), 0.5)


def front_camera(size=(640, 480), distance=4.0, dist=(-0.1, 0.02, 0, 0, 0)) -> Camera:
    """A camera ``distance`` m in front (+x) of the walking body's start, 1.2 m high, aimed at its chest."""
    centre = np.array([distance, 0.0, 1.2])
    rot = look_at(centre, np.array([0.0, 0.0, 1.0]))
    k = np.array([[600.0, 0, size[0] / 2 - 0.5], [0, 600.0, size[1] / 2 - 0.5], [0, 0, 1]])
    return Camera("front", size, k, np.array(dist, float), rot, -rot @ centre)


def grey_person(rng: np.random.Generator):
    app = random_appearance(rng)
    app.colours[:] = 128.0  # grey body: B = G = R, far from the magenta background
    app.stripes[:] = False
    return app


@pytest.fixture(scope="module")
def body() -> np.ndarray:
    return walking_body(20, heading_deg=0.0)[10]  # (17, 3), walking towards +x (the camera)


def test_labels_land_on_the_body(body):
    cam = front_camera()
    bg = np.zeros((480, 640, 3), np.uint8)
    bg[:] = MAGENTA
    rng = np.random.default_rng(0)
    img, labels = render_frame(cam, [body], [grey_person(rng)], bg, CLEAN, rng, light=LIGHT, occluders=[])
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert labels.shape == (1, 17, 3)
    np.testing.assert_allclose(labels[0, :, :2], cam.project(body), atol=1e-9)  # exact, lens included
    visible = labels[0, :, 2] == 1
    assert visible.sum() >= 12, labels[0, :, 2]
    for x, y, _ in labels[0][visible]:
        pixel = img[int(round(y)), int(round(x))].astype(int)
        assert np.ptp(pixel) <= 12, pixel  # grey body (shaded), not the magenta background
        assert 30 <= pixel.mean() <= 140
    corner = img[5, 5].astype(int)
    assert tuple(corner) == MAGENTA


def test_an_occluder_over_a_joint_hides_it(body):
    cam = front_camera()
    rng = np.random.default_rng(1)
    apps = [random_appearance(rng)]
    kwargs = dict(light=LIGHT)
    _, free = render_frame(cam, [body], apps, None, CLEAN, np.random.default_rng(2), occluders=[], **kwargs)
    wrist = H36M17.index("l_wrist")
    assert free[0, wrist, 2] == 1
    x, y = free[0, wrist, :2]
    square = np.array([[x - 12, y - 12], [x + 12, y - 12], [x + 12, y + 12], [x - 12, y + 12]])
    img, hidden = render_frame(cam, [body], apps, None, CLEAN, np.random.default_rng(2),
                               occluders=[Occluder(square, np.array([0.0, 200.0, 0.0]))], **kwargs)
    assert hidden[0, wrist, 2] == 0
    np.testing.assert_array_equal(hidden[0, :, :2], free[0, :, :2])  # positions stay exact
    assert tuple(img[int(round(y)), int(round(x))]) == (0, 200, 0)
    far = np.linalg.norm(free[0, :, :2] - [x, y], axis=1) > 40
    np.testing.assert_array_equal(hidden[0, far, 2], free[0, far, 2])


def test_joints_outside_the_image_or_behind_the_camera_are_nan(body):
    cam = front_camera()
    # Keep only the upper body in view: a crop of the image around the head and shoulders.
    full = cam.project(body)
    top = full[[H36M17.index(j) for j in ("head", "l_shoulder", "r_shoulder")]]
    box = np.array([top[:, 0].min() - 30, top[:, 1].min() - 30, 160.0, 120.0])
    crop = crop_camera(cam, box, (160, 120))
    _, labels = render_frame(crop, [body], None, None, CLEAN, np.random.default_rng(3))
    ankles = [H36M17.index("l_ankle"), H36M17.index("r_ankle")]
    assert np.isnan(labels[0, ankles]).all()
    head = H36M17.index("head")
    assert np.isfinite(labels[0, head]).all()
    assert np.allclose(labels[0, head, :2], crop.project(body[head]))
    # A person behind the camera: every row NaN and nothing drawn.
    behind = body + np.array([8.0, 0.0, 0.0])
    bg = np.full((120, 160, 3), 77, np.uint8)
    img, labels = render_frame(crop, [behind], None, bg, CLEAN, np.random.default_rng(4), occluders=[])
    assert np.isnan(labels).all()
    np.testing.assert_array_equal(img, bg)


def test_the_nearer_person_occludes_the_farther(body):
    cam = front_camera()
    rng = np.random.default_rng(5)
    apps = [random_appearance(rng), random_appearance(rng)]
    far = body - np.array([1.5, 0.0, 0.0])  # straight behind, along the camera's view
    for order in ([body, far], [far, body]):  # the list order must not matter, only depth
        _, labels = render_frame(cam, order, apps, None, CLEAN, np.random.default_rng(6), light=LIGHT, occluders=[])
        near_i = 0 if order[0] is body else 1
        trunk = [H36M17.index(j) for j in ("pelvis", "spine", "thorax")]
        assert (labels[near_i, trunk, 2] == 1).all()
        assert (labels[1 - near_i, trunk, 2] == 0).all()
        assert np.isfinite(labels[1 - near_i, trunk, :2]).all()


def test_render_training_batch_shapes_labels_and_seeds():
    clips = [walking_body(40), walking_body(25, heading_deg=90.0, speed_m_s=2.5)]
    out = render_training_batch(clips, np.random.default_rng(7), 6, (96, 80))
    frames, kp = out["frames"], out["keypoints"]
    assert frames.shape == (6, 3, 80, 96, 3) and frames.dtype == np.uint8
    assert kp.shape == (6, 3, 17, 3) and kp.dtype == np.float64
    finite = np.isfinite(kp[..., 0])
    assert finite.mean() > 0.8
    assert (np.isnan(kp[~finite]).all())
    xy = kp[finite][:, :2]
    assert (xy >= -0.5).all() and (xy[:, 0] <= 95.5).all() and (xy[:, 1] <= 79.5).all()
    assert set(np.unique(kp[finite][:, 2])) <= {0.0, 1.0}
    assert frames.std() > 10  # not blank
    again = render_training_batch(clips, np.random.default_rng(7), 6, (96, 80))
    np.testing.assert_array_equal(again["frames"], frames)
    np.testing.assert_array_equal(again["keypoints"], kp)
    other = render_training_batch(clips, np.random.default_rng(8), 6, (96, 80))
    assert not np.array_equal(other["frames"], frames)


def test_render_take_is_a_seeded_generator():
    rig = make_studio_rig(2, (200, 150), seed=1, distortion="mild")
    people = [walking_body(4, start=(-0.5, 0.0)), walking_body(4, start=(0.5, 1.0), heading_deg=180.0)]
    take = render_take(rig, people, RenderOptions(blur_prob=1.0), seed=3)
    f, images, labels = next(take)
    assert f == 0 and len(images) == 2 and images[0].shape == (150, 200, 3)
    assert labels.shape == (2, 2, 17, 3)
    np.testing.assert_allclose(labels[0, 1, :, :2], np.where(np.isnan(labels[0, 1, :, :1]), np.nan,
                                                              rig[1].project(people[0][0])), atol=1e-9)
    rest = list(take)
    assert [r[0] for r in rest] == [1, 2, 3]
    first_again = next(render_take(rig, people, RenderOptions(blur_prob=1.0), seed=3))
    np.testing.assert_array_equal(first_again[1][1], images[1])


def test_options_name_the_bad_field():
    with pytest.raises(InputError, match="blur_prob"):
        RenderOptions(blur_prob=1.5).check()
    with pytest.raises(InputError, match="crop_scale"):
        RenderOptions(crop_scale=(1.4, 1.1)).check()
    with pytest.raises(InputError, match="background_kinds"):
        RenderOptions(background_kinds=("sky",)).check()


def test_write_performance_writes_readable_videos_and_truth(tmp_path):
    rig = make_studio_rig(2, (160, 128), seed=2, distortion="mild")
    people = [walking_body(6, speed_m_s=0.5), walking_body(6, start=(0.0, 2.0), heading_deg=180.0)]
    out = tmp_path / "perf"
    summary = write_performance(out, rig, people, 30.0, RenderOptions(), seed=4)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["cam0.mp4", "cam1.mp4"]
    for cam in rig.cameras:
        cap = cv2.VideoCapture(str(out / "videos" / f"{cam.name}.mp4"))
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
        cap.release()
        assert len(frames) == 6
        assert frames[0].shape == (128, 160, 3)
    back = CameraRig.load(out / "rig.toml")
    assert back.names == rig.names
    for a, b in zip(back.cameras, rig.cameras):
        np.testing.assert_allclose(a.matrix, b.matrix)
        np.testing.assert_allclose(a.rotation, b.rotation, atol=1e-12)
    pts = read_points3d(out / "truth_points3d.npz")
    np.testing.assert_allclose(pts.points3d, people[0])
    assert pts.joint_names == list(H36M17.joints) and pts.fps == 30.0
    kp = read_keypoints2d(out / "truth_keypoints2d.npz")
    assert kp.keypoints.shape == (2, 6, 17, 3) and kp.camera_names == rig.names
    assert summary["frames"] == 6 and set(summary["videos"]) == {"cam0", "cam1"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left

    with pytest.raises(InputError, match="not empty"):
        write_performance(out, rig, people, 30.0, seed=4)
    with pytest.raises(InputError, match="codec"):
        write_performance(tmp_path / "bad", rig, people, 30.0, codec="zz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perf"]  # nothing half-written


def test_synth_performance_command(tmp_path):
    exe = str(Path(sys.executable).parent / "posestudio")
    help_text = subprocess.run([exe, "synth", "performance", "--help"], capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "example:" in help_text.stdout
    run = subprocess.run([exe, "synth", "performance", "--out", str(tmp_path / "p"), "--cameras", "2", "--frames", "3",
                          "--size", "128x96", "--people", "2", "--seed", "1"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "frame 3/3" in run.stdout
    assert (tmp_path / "p" / "videos" / "cam1.mp4").is_file() and (tmp_path / "p" / "rig.toml").is_file()


def test_performance_bodies_without_motion_capture_walks(tmp_path):
    bodies, sources = performance_bodies(12, 30.0, people=2, seed=3, bandai_dir=tmp_path)  # no BVH files there
    assert sources == ["walking_body", "walking_body"]
    assert [b.shape for b in bodies] == [(12, 17, 3), (12, 17, 3)]
    gap = np.linalg.norm(bodies[1][:, 0, :2].mean(0) - bodies[0][:, 0, :2].mean(0))
    assert 1.5 <= gap <= 2.5
    with pytest.raises(InputError, match="clip"):
        performance_bodies(12, 30.0, clip="walk", bandai_dir=tmp_path)
