"""``posestudio view`` end to end: a reconstruct folder rendered to PNG/MP4, its errors as one line,
a live stream's first frame, the demo's render step, the window's timeline (and the window itself
where Xvfb is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.cli import main
from posestudio.core.keypoints_file import Points3D, write_points3d
from posestudio.models.keypoints import H36M17
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig
from posestudio.viewer.player import NO_DISPLAY, Playback

pytestmark = pytest.mark.timeout(120)
NEEDS_OPEN3D = "open3d does not import here (pip install -e .; Debian's libusb-1.0-0: bash .ci/system-deps.sh)"


def open3d_imports() -> bool:
    try:
        import open3d  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


renders = pytest.mark.skipif(not open3d_imports(), reason=NEEDS_OPEN3D)


def write_take(folder: Path, frames: int = 10, shift: float = 0.0, rig: bool = True) -> Path:
    """A reconstruct-like folder: points3d.npz (a walk, confidences 0..1) and rig.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    body = walking_body(frames, start=(-0.4 + shift, -0.2), heading_deg=35)
    conf = np.tile(np.linspace(0, 1, 17), (frames, 1))
    write_points3d(folder / "points3d.npz", Points3D(body, conf, list(H36M17.joints), 30.0))
    if rig:
        make_studio_rig(4, image_size=(640, 360), distortion="mild", seed=3, focal_range=(0.45, 0.55)).save(
            folder / "rig.toml")
    return folder


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def has_hue(image: np.ndarray, person: int, tol: int = 12) -> int:
    from posestudio.viewer.scene import PERSON_HUES

    return int((np.abs(image.astype(int) - np.round(255 * PERSON_HUES[person])).max(-1) <= tol).sum())


def fails(capsys, *argv: str) -> str:
    """Run ``posestudio view ...`` expecting the one-line user error; returns it."""
    assert main(["view", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("posestudio view: error: ") and "\n" not in err, err
    return err


@renders
def test_png_of_the_middle_frame_and_through_a_rig_camera(tmp_path, capsys):
    take = write_take(tmp_path / "take")
    assert main(["view", str(take), "--offscreen", str(tmp_path / "out.png")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "1280x720" in out and "frame 5 of 10" in out
    image = read_rgb(tmp_path / "out.png")
    assert image.shape == (720, 1280, 3) and has_hue(image, 0) > 50
    assert main(["view", str(take), "--offscreen", str(tmp_path / "cam.png"), "--view-camera", "cam2",
                 "--size", "320x180", "--frame", "0"]) == 0
    assert read_rgb(tmp_path / "cam.png").shape == (180, 320, 3)
    assert "frame 0 of 10" in capsys.readouterr().out


@renders
def test_mp4_of_every_frame(tmp_path, capsys):
    take = write_take(tmp_path / "take", frames=8)
    assert main(["view", str(take), "--offscreen", str(tmp_path / "take.mp4"), "--size", "320x180"]) == 0
    video = cv2.VideoCapture(str(tmp_path / "take.mp4"))
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert count == 8 and ok and frame.shape == (180, 320, 3)
    assert "8 frames at 30 fps" in capsys.readouterr().out


@renders
def test_people_one_or_all_in_their_own_hues(tmp_path, capsys):
    take = write_take(tmp_path / "take")
    write_take(tmp_path / "take" / "people" / "person_3", shift=1.2, rig=False)
    assert main(["view", str(take), "--person", "3", "--offscreen", str(tmp_path / "p3.png")]) == 0
    assert main(["view", str(take), "--person", "all", "--offscreen", str(tmp_path / "all.png")]) == 0
    both = read_rgb(tmp_path / "all.png")
    assert has_hue(both, 0) > 50 and has_hue(both, 1) > 50                  # subject azure, person_3 magenta
    err = fails(capsys, str(take), "--person", "7", "--offscreen", str(tmp_path / "x.png"))
    assert "person_7: no such person" in err and "people in" in err and err.endswith(": person_3")


@renders
def test_without_a_rig_the_cameras_are_left_out(tmp_path, capsys):
    take = write_take(tmp_path / "take", rig=False)
    assert main(["view", str(take), "--offscreen", str(tmp_path / "norig.png")]) == 0
    err = fails(capsys, str(take), "--offscreen", str(tmp_path / "x.png"), "--view-camera", "cam0")
    assert "no rig" in err and "--calibration" in err


def test_missing_and_malformed_takes_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert "no such folder" in fails(capsys, str(tmp_path / "nowhere"), "--offscreen", out)
    (tmp_path / "empty").mkdir()
    err = fails(capsys, str(tmp_path / "empty"), "--offscreen", out)
    assert "points3d.npz" in err and "not found" in err
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / "points3d.npz").write_bytes(b"this is not a zip file")
    assert "not a readable .npz" in fails(capsys, str(bad), "--offscreen", out)

    def take_with(**fields) -> str:
        folder = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        doc = dict(points3d=np.zeros((4, 17, 3)), confidence=np.ones((4, 17)), joint_names=np.array(H36M17.joints),
                   fps=np.float64(30), format=np.array("posestudio-points3d"), format_version=np.int64(1))
        doc.update(fields)
        np.savez(folder / "points3d.npz", **{k: v for k, v in doc.items() if v is not None})
        return str(folder)

    assert "'points3d' has shape (4, 17)" in fails(capsys, take_with(points3d=np.zeros((4, 17))), "--offscreen", out)
    assert "'confidence' has shape (4, 16)" in fails(capsys, take_with(confidence=np.ones((4, 16))), "--offscreen",
                                                     out)
    assert "missing field 'joint_names'" in fails(capsys, take_with(joint_names=None), "--offscreen", out)
    assert "'joint_names'" in fails(capsys, take_with(joint_names=np.array([f"j{i}" for i in range(17)])),
                                    "--offscreen", out)
    empty = take_with(points3d=np.zeros((0, 17, 3)), confidence=np.zeros((0, 17)))
    assert "the take is empty: 'points3d' has no frames" in fails(capsys, empty, "--offscreen", out)
    all_nan = take_with(points3d=np.full((4, 17, 3), np.nan))
    assert "the take is empty: every point in 'points3d' is NaN" in fails(capsys, all_nan, "--offscreen", out)
    assert "'fps'" in fails(capsys, take_with(fps=np.float64(0)), "--offscreen", out)
    assert not (tmp_path / "x.png").exists()


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    take = str(write_take(tmp_path / "take"))
    assert ".png (one frame) or .mp4" in fails(capsys, take, "--offscreen", str(tmp_path / "x.gif"))
    assert "--frame 10 is outside the take: frames 0..9" in fails(capsys, take, "--offscreen", str(tmp_path / "x.png"),
                                                                 "--frame", "10")
    assert "WIDTHxHEIGHT" in fails(capsys, take, "--offscreen", str(tmp_path / "x.png"), "--size", "big")
    err = fails(capsys, take, "--offscreen", str(tmp_path / "x.png"), "--view-camera", "cam9")
    assert "cam9" in err and "cam0, cam1, cam2, cam3" in err
    assert "--frame picks the instant of a PNG" in fails(capsys, take, "--offscreen", str(tmp_path / "x.mp4"),
                                                         "--frame", "2")
    assert "DIR" in fails(capsys)
    assert "tcp://HOST:PORT" in fails(capsys, "--connect", "localhost:5555")
    assert "rig file not found" in fails(capsys, take, "--calibration", str(tmp_path / "none.toml"), "--offscreen",
                                         str(tmp_path / "x.png"))


def test_without_a_display_the_window_says_to_render_offscreen(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    take = str(write_take(tmp_path / "take"))
    assert fails(capsys, take) == f"posestudio view: error: {NO_DISPLAY}"
    assert fails(capsys, "--connect", "tcp://127.0.0.1:9") == f"posestudio view: error: {NO_DISPLAY}"


def test_the_timeline_plays_at_the_take_rate_loops_steps_and_pauses():
    clock = Playback(n_frames=5, fps=10.0)
    assert not clock.tick(100.0)                         # the first tick starts the clock
    assert not clock.tick(100.05) and clock.frame == 0
    assert clock.tick(100.1) and clock.frame == 1
    assert clock.tick(100.35) and clock.frame == 3       # late: frames due are skipped, not queued
    assert clock.tick(100.5) and clock.frame == 0        # loops
    clock.step(-1)
    assert clock.frame == 0 and not clock.playing        # clamped, paused
    assert not clock.tick(101.0)
    clock.step(3)
    clock.step(9)
    assert clock.frame == 4 and clock.status() == "frame 5/5 (paused)"
    clock.toggle()
    assert clock.playing and not clock.tick(102.0) and clock.tick(102.1) and clock.frame == 0
    clock.seek(2)
    assert clock.frame == 2 and clock.playing


# ---------------------------------------------------------------------------------------------
# live

def publish_until(stop: threading.Event, endpoint_box: list, people: int = 2) -> None:
    """A small publisher: skeleton frames (people side by side, ids 10, 11, ...) every 20 ms until ``stop``."""
    import zmq

    from posestudio.core.skeleton_stream import SkeletonFrame, encode_frame

    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    endpoint_box.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    body = walking_body(1, start=(-0.4, -0.2))[0]
    order = np.arange(17)[::-1]                           # the stream's own joint order
    points = np.stack([body + [1.2 * p, 0, 0] for p in range(people)])[:, order].astype(np.float32)
    names = tuple(H36M17.joints[i] for i in order)
    n = 0
    try:
        while not stop.is_set():
            sock.send_multipart(encode_frame(SkeletonFrame(n, time.time(), names, points,
                                                           np.full((people, 17), 0.9, np.float32),
                                                           np.arange(people) + 10)))
            n += 1
            time.sleep(0.02)
    finally:
        sock.close(linger=0)


@renders
def test_connect_renders_the_first_frame_of_a_live_stream(tmp_path, capsys):
    pytest.importorskip("posestudio.viewer.stream_client", reason="the stream client is not there yet")
    stop, box = threading.Event(), []
    thread = threading.Thread(target=publish_until, args=(stop, box), daemon=True)
    thread.start()
    try:
        while not box:
            time.sleep(0.01)
        assert main(["view", "--connect", box[0], "--offscreen", str(tmp_path / "live.png"), "--timeout", "10",
                     "--size", "640x360"]) == 0
    finally:
        stop.set()
        thread.join(5)
    out = capsys.readouterr().out
    assert "2 people" in out and "640x360" in out
    image = read_rgb(tmp_path / "live.png")
    # hues by person id: 10 % 5 = 0 (azure), 11 % 5 = 1 (magenta)
    assert has_hue(image, 0) > 30 and has_hue(image, 1) > 30


def test_connect_without_a_publisher_times_out_with_one_line(tmp_path, capsys):
    pytest.importorskip("posestudio.viewer.stream_client", reason="the stream client is not there yet")
    t0 = time.monotonic()
    err = fails(capsys, "--connect", "tcp://127.0.0.1:9", "--offscreen", str(tmp_path / "x.png"), "--timeout", "0.3")
    assert "no skeleton frame arrived within 0.3 s" in err and time.monotonic() - t0 < 10
    assert "--offscreen OUT.png" in fails(capsys, "--connect", "tcp://127.0.0.1:9", "--offscreen",
                                          str(tmp_path / "x.mp4"))


# ---------------------------------------------------------------------------------------------
# the demo's last step

@renders
def test_demo_ends_with_a_render_of_its_take(tmp_path, capsys, monkeypatch):
    from posestudio.commands import demo
    from posestudio.viewer import offscreen

    write_take(tmp_path / "take")
    assert demo.render_take(tmp_path) == tmp_path / "render.png"
    assert read_rgb(tmp_path / "render.png").shape == (720, 1280, 3)
    assert f"wrote {tmp_path / 'render.png'}" in capsys.readouterr().out

    def unavailable(*args, **kwargs):
        raise offscreen.RenderUnavailable("cannot render offscreen (legacy: no EGL)")

    monkeypatch.setattr(offscreen, "render_png", unavailable)
    assert demo.render_take(tmp_path) is None
    assert "render: skipped, nothing can render here (cannot render offscreen (legacy: no EGL))" in \
        capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the window, under a virtual display

@renders
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb): "
                                                              "no virtual display to open the window on")
def test_the_window_plays_the_take_under_a_virtual_display(tmp_path):
    folder = write_take(tmp_path / "take")
    script = textwrap.dedent(f"""
        import time, numpy as np
        from pathlib import Path
        from posestudio.viewer.take import load_rig, load_take
        from posestudio.viewer import player
        windows, frames, t0 = [], set(), time.monotonic()
        init, tick = player.SkeletonWindow.__init__, player.Playback.tick
        def remember(self, *a, **k):
            init(self, *a, **k); windows.append(self)
        def close_later(self, now):
            changed = tick(self, now); frames.add(self.frame)
            # close once a few frames have played (a loaded machine plays slower), or after 30 s
            waited = time.monotonic() - t0
            if (waited > 1.5 and len(frames) > 4) or waited > 30:
                image = np.asarray(windows[0].vis.capture_screen_float_buffer(True))
                drawn = (np.abs(image - [0.11, 0.12, 0.14]).max(-1) > 0.05).sum()
                print("drawn", int(drawn), "frames", len(frames), flush=True)
                windows[0].vis.close()
            return changed
        player.SkeletonWindow.__init__, player.Playback.tick = remember, close_later
        folder = Path("{folder}")
        player.play_take(load_take(folder), load_rig(folder, None))
    """)
    out = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x900x24", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r"drawn (\d+) frames (\d+)", out.stdout)
    assert found, out.stdout[-500:]
    assert int(found[1]) > 2000 and int(found[2]) > 3            # the scene is drawn and the take plays
    assert "frame 1/10 (playing)" in out.stdout                  # the frame counter


@renders
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb): "
                                                              "no virtual display to open the window on")
def test_the_live_window_follows_the_stream_under_a_virtual_display(tmp_path):
    pytest.importorskip("posestudio.viewer.stream_client", reason="the stream client is not there yet")
    script = textwrap.dedent("""
        import threading, time, numpy as np
        from posestudio.viewer import player
        from tests.viewer.test_view_command import publish_until
        stop, box = threading.Event(), []
        publisher = threading.Thread(target=publish_until, args=(stop, box, 3), daemon=True)
        publisher.start()
        while not box:
            time.sleep(0.01)
        shown, show = [], player.SkeletonWindow.show
        def count_and_close(self, points, confidence, bones, hues):
            show(self, points, confidence, bones, hues); shown.append(len(points))
            if len(shown) == 5:
                image = np.asarray(self.vis.capture_screen_float_buffer(True))
                print("drawn", int((np.abs(image - [0.11, 0.12, 0.14]).max(-1) > 0.05).sum()), "people", shown[-1])
                self.vis.close()
        player.SkeletonWindow.show = count_and_close
        player.play_live(box[0])
        stop.set()
        publisher.join(5)
    """)
    out = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x900x24", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=100, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r"drawn (\d+) people (\d+)", out.stdout)
    assert found, out.stdout[-500:]
    assert int(found[1]) > 1000 and int(found[2]) == 3
    assert re.search(r"live: frame \d+ at [\d.]+ s, 3 people, 0 malformed", out.stdout)
