"""Offscreen renders checked by their pixels: the bones are where the camera projects them, nowhere
else; PNG and MP4 files of the right size and length, written atomically.

Open3D's legacy renderer runs in this process. Filament runs in a child process: once it ran in a
process the legacy renderer no longer opens there (Open3D 0.20), and other tests need it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.core.camera import Camera
from posestudio.models.keypoints import H36M17
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig

o3d = pytest.importorskip("open3d", reason="open3d does not import here (pip install -e .; Debian's libusb-1.0-0, "
                                           "bash .ci/system-deps.sh)")

from posestudio.viewer import offscreen  # noqa: E402 - after the skip: it is what needs open3d
from posestudio.viewer.offscreen import RenderUnavailable, render_mp4, render_png  # noqa: E402
from posestudio.viewer.scene import (  # noqa: E402
    CONFIDENCE_COLOURS,
    PERSON_HUES,
    SceneStyle,
    Take,
    confidence_colours,
    default_view_camera,
    rig_view_camera,
)

pytestmark = pytest.mark.timeout(120)
SIZE = (640, 360)
BONES_ONLY = SceneStyle(joint_radius_m=0)


def scene() -> tuple[Take, object]:
    """A walk seen by a 4-camera rig without lens distortion; confidences from 0 to 1 over the joints."""
    rig = make_studio_rig(4, image_size=SIZE, distortion="none", seed=3, focal_range=(0.45, 0.55))
    body = walking_body(12, start=(-0.4, -0.2), heading_deg=35)
    conf = np.tile(np.linspace(0, 1, 17), (12, 1))
    return Take(body[:, None], conf[:, None], H36M17, 30.0), rig


def hue_mask(image: np.ndarray, rgb: np.ndarray, tol: int = 12) -> np.ndarray:
    """``(H, W)`` pixels within ``tol`` of the colour ``rgb`` (in [0, 1])."""
    return (np.abs(image.astype(int) - np.round(255 * np.asarray(rgb))).max(-1) <= tol)


def distance_to_segments(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` distance of each pixel ``(N, 2)`` to the nearest of the segments ``a``-``b`` ``(B, 2)``."""
    d = b - a
    t = np.clip(np.einsum("nbk,bk->nb", pixels[:, None] - a, d) / np.einsum("bk,bk->b", d, d), 0, 1)
    return np.linalg.norm(pixels[:, None] - (a + t[..., None] * d), axis=-1).min(axis=1)


def check_bones_where_projected(image: np.ndarray, camera: Camera, joints: np.ndarray, rig=None) -> None:
    """Every bone's colour is within 2 px of its projected midpoint, and no bone-coloured pixel lies
    farther than 4 px from a projected bone; the projection is ``rig.project`` when a rig is given."""
    h, w = image.shape[:2]
    assert (w, h) == camera.image_size
    ends = joints[H36M17.bone_indices]                                          # (B, 2, 3)
    if rig is not None:
        c = rig.names.index(camera.name)
        uv = rig.project(ends)[c]                                               # (B, 2, 2) pixels
    else:
        uv = camera.project(ends)
    assert camera.in_image(uv.reshape(-1, 2), margin=3).all(), "the test's skeleton must be fully in view"
    mask = hue_mask(image, PERSON_HUES[0])
    for b, mid in enumerate(uv.mean(axis=1)):
        u, v = np.round(mid).astype(int)
        assert mask[v - 2:v + 3, u - 2:u + 3].any(), f"bone {H36M17.bones[b]} not drawn near ({u}, {v})"
    ys, xs = np.nonzero(mask)
    assert len(xs) > 100
    far = distance_to_segments(np.stack([xs, ys], 1).astype(float), uv[:, 0], uv[:, 1])
    assert far.max() <= 4.0, f"bone colour {far.max():.1f} px away from every bone"


def check_joint_colours(image: np.ndarray, camera: Camera, joints: np.ndarray, conf: np.ndarray) -> None:
    """Most joints show their confidence colour within 2 px of their projection (a few may be hidden)."""
    uv = np.round(camera.project(joints)).astype(int)
    seen = [hue_mask(image, confidence_colours(c), 14)[v - 2:v + 3, u - 2:u + 3].any()
            for (u, v), c in zip(uv, conf)]
    assert np.mean(seen) >= 0.8, f"only {np.mean(seen):.0%} of the joints show their confidence colour"


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", ["cam0", "cam1", "cam2", "cam3"])
def test_legacy_render_puts_the_bones_where_the_rig_projects_them(tmp_path, name):
    take, rig = scene()
    cam = rig_view_camera(rig, name)
    # bones alone (joint spheres hide the middle of short bones seen end-on), then the full scene
    done = render_png(tmp_path / "b.png", take, 6, cam, rig, BONES_ONLY, renderer="legacy")
    assert done.renderer == "legacy" and done.size == SIZE
    check_bones_where_projected(read_rgb(done.path), cam, take.points[6, 0], rig)
    done = render_png(tmp_path / "f.png", take, 6, cam, rig, renderer="legacy")
    check_joint_colours(read_rgb(done.path), cam, take.points[6, 0], take.confidence[6, 0])


def test_an_off_centre_principal_point_and_a_scaled_size_still_line_up(tmp_path):
    take, rig = scene()
    cam = rig["cam1"]
    k = cam.matrix.copy()
    k[0, 2], k[1, 2] = 180.3, 250.7                        # far from the image centre
    shifted = Camera("shifted", SIZE, k, np.zeros(5), cam.rotation, cam.translation)
    done = render_png(tmp_path / "s.png", take, 3, shifted, rig, BONES_ONLY, renderer="legacy")
    check_bones_where_projected(read_rgb(done.path), shifted, take.points[3, 0])
    small = rig_view_camera(rig, "cam2", (320, 180))
    done = render_png(tmp_path / "small.png", take, 3, small, rig, BONES_ONLY, renderer="legacy")
    image = read_rgb(done.path)
    assert image.shape == (180, 320, 3)
    check_bones_where_projected(image, small, take.points[3, 0])


def test_default_view_shows_the_whole_take(tmp_path):
    take, rig = scene()
    done = render_png(tmp_path / "d.png", take, None, None, rig, BONES_ONLY)   # middle frame, default camera
    image = read_rgb(done.path)
    assert image.shape == (720, 1280, 3)
    cam = default_view_camera(take.points, rig)
    check_bones_where_projected(image, cam, take.points[6, 0])


def test_filament_render_puts_the_bones_where_the_rig_projects_them(tmp_path):
    take, rig = scene()
    rig.save(tmp_path / "rig.toml")
    np.save(tmp_path / "body.npy", take.points[:, 0])
    # a child process: once Filament ran in a process, the legacy renderer cannot open there
    code = textwrap.dedent(f"""
        import json, numpy as np
        from posestudio.core.rig import CameraRig
        from posestudio.models.keypoints import H36M17
        from posestudio.viewer.offscreen import filament_works, render_png
        from posestudio.viewer.scene import SceneStyle, Take, rig_view_camera
        works, why = filament_works()
        if not works:
            print(json.dumps({{"skip": why}})); raise SystemExit
        rig = CameraRig.load("{tmp_path / 'rig.toml'}")
        body = np.load("{tmp_path / 'body.npy'}")
        take = Take(body[:, None], np.tile(np.linspace(0, 1, 17), (len(body), 1))[:, None], H36M17, 30.0)
        cam = rig_view_camera(rig, "cam1")
        done = render_png("{tmp_path / 'bones.png'}", take, 6, cam, rig, SceneStyle(joint_radius_m=0), "filament")
        render_png("{tmp_path / 'fil.png'}", take, 6, cam, rig, renderer="filament")
        print(json.dumps({{"renderer": done.renderer}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if "skip" in answer:
        pytest.skip(f"Filament does not start here: {answer['skip']} (mesa-vulkan-drivers; bash .ci/system-deps.sh)")
    assert answer["renderer"] == "filament"
    check_bones_where_projected(read_rgb(tmp_path / "bones.png"), rig_view_camera(rig, "cam1"), take.points[6, 0], rig)
    check_joint_colours(read_rgb(tmp_path / "fil.png"), rig_view_camera(rig, "cam1"), take.points[6, 0],
                        take.confidence[6, 0])


def test_mp4_has_every_frame_at_the_size_asked_and_the_skeleton_moves(tmp_path):
    take, rig = scene()
    cam = rig_view_camera(rig, "cam0", (320, 180))
    seen = []
    done = render_mp4(tmp_path / "take.mp4", take, cam, rig, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (12, 12) and done.frames == 12
    video = cv2.VideoCapture(str(done.path))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    assert len(frames) == 12 and frames[0].shape == (180, 320, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 0.1            # the walker moved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4"]          # no temporary file left


def test_a_failed_render_leaves_no_file(tmp_path, monkeypatch):
    take, rig = scene()
    calls = []

    def broken(self, camera):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("renderer died")
        return np.zeros((camera.image_size[1], camera.image_size[0], 3), np.uint8)

    monkeypatch.setattr(offscreen.LegacyBackend, "render", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        render_mp4(tmp_path / "take.mp4", take, rig_view_camera(rig, "cam0", (160, 90)), rig, renderer="legacy")
    assert list(tmp_path.iterdir()) == []


def test_no_renderer_says_what_each_answered_and_what_to_install(tmp_path, monkeypatch):
    take, rig = scene()

    def no_window(self, camera, background):
        raise RenderUnavailable("Open3D's Visualizer could not open an invisible window (EGL): none")

    monkeypatch.setattr(offscreen.LegacyBackend, "__init__", no_window)
    monkeypatch.setattr(offscreen, "filament_works", lambda: (False, "a test render failed (no Vulkan)"))
    with pytest.raises(RenderUnavailable) as err:
        render_png(tmp_path / "never.png", take)
    text = str(err.value)
    assert "legacy: Open3D's Visualizer could not open" in text and "filament: a test render failed" in text
    assert "mesa-vulkan-drivers" in text and not (tmp_path / "never.png").exists()
    with pytest.raises(RenderUnavailable, match="unknown renderer 'vulkan'"):
        render_png(tmp_path / "never.png", take, renderer="vulkan")


def test_confidence_colours_are_distinct_from_the_bone_hues():
    # the pixel checks rely on it: no bone hue is within the tolerance of a confidence colour
    ramp = confidence_colours(np.linspace(0, 1, 101))
    gap = np.abs(255 * PERSON_HUES[:, None] - 255 * ramp[None]).max(-1).min()
    assert gap > 40 and len(CONFIDENCE_COLOURS) == 3
