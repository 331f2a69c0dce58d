"""Crash-safe session recording (``docs/recording.md``): the recorder fed frame sets directly and through a
live server on loopback, the session read back (also after ``kill -9`` mid-take), the announced start
and stop times, write errors, ``posestudio reconstruct SESSION`` and the dataset export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.capture.node import CaptureNode
from posestudio.core.frame_messages import RAW_BGR8
from posestudio.core.rig import CameraRig
from posestudio.reconstruction.frame_sets import FrameSet
from posestudio.reconstruction.live.recording import RecordingError, ServerRecording, SessionRecorder
from posestudio.reconstruction.live.server import LiveServer, LiveServerOptions
from posestudio.reconstruction.live.session_reader import SessionError, open_session
from posestudio.reconstruction.options import ReconstructionOptions
from posestudio.synthetic import make_studio_rig
from tests.reconstruction.test_live_server import TruthDetector, Walk, stamped_frames, studio, wait_for

pytestmark = pytest.mark.timeout(90)

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")
PERIOD_NS = 100_000_000       # 10 sets/s


@pytest.fixture(scope="module")
def rig() -> CameraRig:
    return make_studio_rig(3, (160, 120), seed=3)


def frame_set(slot: int, cameras: list[str], missing: tuple[str, ...] = (), size: tuple[int, int] = (120, 160)) -> FrameSet:
    """Set ``slot`` at ``slot * PERIOD_NS``: each camera's image is filled with ``slot`` (so a frame says its slot)."""
    frames = {c: None if c in missing else np.full((*size, 3), slot % 256, np.uint8) for c in cameras}
    t = slot * PERIOD_NS
    return FrameSet(slot, t, frames, tuple(missing), 0, 0, {c: t for c in cameras if c not in missing})


def test_a_take_between_announced_times_is_recorded_and_reads_back(rig, tmp_path) -> None:
    cams = list(rig.names)
    rec = SessionRecorder(tmp_path / "s", rig, cams, 10.0, "take 1",
                          clock_status=lambda: {c: {"offset_ms": 1.5, "drift_ppm": 2.0, "uncertainty_us": 40.0}
                                                for c in cams})
    rec.start_at(3 * PERIOD_NS)                   # announced: sets 0-2 come before it
    rec.stop_at(9 * PERIOD_NS)                    # sets 9.. come after it
    for k in range(12):
        rec.observe(frame_set(k, cams, missing=(cams[1],) if k == 5 else ()))
        rec.add_points3d(k, np.full((17, 3), k / 10), np.ones(17))
        rec.add_keypoints2d(k, np.full((3, 17, 3), float(k)), [f"j{i}" for i in range(17)])
    meta = rec.close()
    assert meta["status"] == "complete" and meta["counts"]["sets"] == 6
    assert meta["counts"]["before_start"] == 3 and meta["counts"]["after_stop"] == 3
    assert meta["start_studio_ns"] == 3 * PERIOD_NS and meta["stop_studio_ns"] == 9 * PERIOD_NS

    s = open_session(tmp_path / "s")
    assert s.complete and s.cameras == cams and s.fps == 10.0 and s.rig.names == cams
    assert list(s.slots) == [3, 4, 5, 6, 7, 8]
    assert s.missing() == {cams[0]: 0, cams[1]: 1, cams[2]: 0}      # recorded as missing, not invented
    assert s.index[2].cameras[cams[1]] is None
    for row, image in s.frames(cams[0]):
        assert image.shape == (120, 160, 3) and abs(int(image.mean()) - row.slot) <= 2
    # the videos hold each camera's real frames only; the index says which video frame is which
    for cam, n in ((cams[0], 6), (cams[1], 5)):
        cap = cv2.VideoCapture(str(tmp_path / "s" / "videos" / f"{cam}.mp4"))
        count = 0
        while cap.read()[0]:
            count += 1
        assert count == n
    assert s.index[3].cameras[cams[1]]["video_frame"] == 2      # slot 6: after slots 3 and 4, 5 missing
    pts = s.results("points3d.npz")
    assert list(pts["slots"]) == [3, 4, 5, 6, 7, 8] and np.allclose(pts["points3d"][:, 0, 0], np.arange(3, 9) / 10)
    kp = s.results("keypoints2d.npz")
    assert kp["keypoints"].shape == (3, 6, 17, 3)
    clock = [json.loads(line) for line in (tmp_path / "s" / "clock_sync.jsonl").read_text().splitlines()]
    assert clock and clock[-1]["cameras"][cams[2]]["drift_ppm"] == 2.0


def test_a_session_folder_that_exists_or_cannot_be_written_gives_one_line_naming_it(rig, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordingError, match=str(tmp_path / "file")):
        SessionRecorder(tmp_path / "file" / "s", rig, rig.names, 10.0)
    SessionRecorder(tmp_path / "s", rig, rig.names, 10.0).close()
    with pytest.raises(RecordingError, match="already holds a session"):
        SessionRecorder(tmp_path / "s", rig, rig.names, 10.0)
    with pytest.raises(SessionError, match="not a recorded session"):
        open_session(tmp_path)


def test_a_write_error_mid_take_stops_the_writer_with_the_path_and_keeps_what_was_recorded(rig, tmp_path) -> None:
    cams = list(rig.names)
    rec = SessionRecorder(tmp_path / "s", rig, cams, 10.0, videos=False)
    rec.start_at(0)
    for k in range(4):
        rec.observe(frame_set(k, cams))
    wait_for(lambda: rec.counts["sets"] == 4, 5.0, "4 sets written")
    frames = tmp_path / "s" / "frames" / cams[2]
    for f in frames.iterdir():
        f.unlink()
    frames.rmdir()
    frames.write_text("not a folder")             # as a full disk would: the next frame cannot be written
    rec.observe(frame_set(4, cams))
    wait_for(lambda: rec.error is not None, 5.0, "the writer's error")
    assert str(frames) in str(rec.error) and "\n" not in str(rec.error)
    with pytest.raises(RecordingError):
        rec.close()
    s = open_session(tmp_path / "s")
    assert list(s.slots) == [0, 1, 2, 3] and s.metadata["status"] == "failed" and s.metadata["error"]


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from posestudio.reconstruction.frame_sets import FrameSet
    from posestudio.reconstruction.live.recording import SessionRecorder
    from posestudio.synthetic import make_studio_rig
    rig = make_studio_rig(3, (160, 120), seed=3)
    rec = SessionRecorder(sys.argv[1], rig, rig.names, 20.0, "crash", results_every_s=0.5)
    rec.start_at(0)
    t0 = time.monotonic()
    for k in range(100000):
        time.sleep(max(0.0, t0 + k / 20 - time.monotonic()))
        frames = {c: np.full((120, 160, 3), k % 256, np.uint8) for c in rig.names}
        rec.observe(FrameSet(k, k * 50_000_000, frames, (), 0, 0, {c: k * 50_000_000 for c in rig.names}))
        rec.add_points3d(k, np.zeros((17, 3)), np.ones(17))
        print(k, flush=True)
""")


def test_kill_9_mid_take_loses_at_most_the_last_second_and_the_session_opens(tmp_path) -> None:
    folder = tmp_path / "crash"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        last = -1
        deadline = time.monotonic() + 60
        while last < 50 and time.monotonic() < deadline:       # 2.5 s of recording at 20 sets/s
            line = proc.stdout.readline()
            assert line, "the recorder process ended early"
            last = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # a crash mid-line: the reader drops a cut last line
    with open(folder / "index.jsonl", "ab") as f:
        f.write(b'{"slot": 99999, "studio_time_ns": 12')
    s = open_session(folder)
    assert not s.complete and s.metadata["status"] == "recording" and s.truncated_lines == 1
    slots = list(s.slots)
    assert slots == list(range(len(slots)))                     # every set up to the crash, in order
    assert slots[-1] >= last - 20, (slots[-1], last)            # at most 1 s (20 sets) lost
    print(f"kill -9: the last set handed over {last}, the last set recorded {slots[-1]}")
    assert all(n == 0 for n in s.missing().values())            # every indexed frame is on disk
    assert all(image is not None for _, image in s.frames(s.cameras[0]))
    assert not (folder / "videos").exists()                     # never a half-written video to trip on
    pts = s.results("points3d.npz")
    assert pts is not None and len(pts["slots"]) >= 1           # the last results rewrite survived whole


def test_recording_through_a_live_server_on_loopback(rig, tmp_path) -> None:
    """Nodes stream to a LiveServer whose observer is the recorder: frames, 2D (the wrapped detector) and 3D
    (the skeleton stream) land in the session, with the server's clock log."""
    big = make_studio_rig(4, (1280, 720), seed=3)
    cams = list(big.names)
    walk = Walk()
    recording = ServerRecording(tmp_path / "live", big, cams, 20.0, TruthDetector(big, cams, walk))
    server = LiveServer(studio(cams), big, recording.detector,
                        LiveServerOptions(reconstruction=ReconstructionOptions(live=True, prior=None),
                                          assembled_observer=recording.observe)).start()
    nodes: list[CaptureNode] = []
    try:
        recording.attach(server, start_in_s=0.5)
        host = server.data_endpoint.replace("0.0.0.0", "127.0.0.1")
        nodes = [CaptureNode(c, stamped_frames(), host, fps=20.0, encoding=RAW_BGR8) for c in cams]
        for node in nodes:
            node.start()
        wait_for(lambda: recording.recorder.counts["sets"] >= 30, 20.0, "30 recorded sets")
    finally:
        for node in nodes:
            node.stop()
        server.stop()
    meta = recording.close()
    assert meta["status"] == "complete" and meta["start_studio_ns"] is not None
    s = open_session(tmp_path / "live")
    assert len(s.index) == meta["counts"]["sets"] >= 30
    assert all(r.studio_time_ns >= meta["start_studio_ns"] for r in s.index)
    row = next(r for r in s.index if all(r.cameras.values()))
    entry = row.cameras[cams[0]]
    assert entry["sequence"] >= 0 and entry["width"] == 4 and abs(entry["studio_time_ns"] - row.studio_time_ns) < 5e7
    _, image = next(iter(s.frames(cams[0])))
    assert image is None or image.shape == (4, 4, 3)
    kp = s.results("keypoints2d.npz")
    pts = s.results("points3d.npz")
    assert kp is not None and np.isfinite(kp["keypoints"]).any()
    assert pts is not None and np.isfinite(pts["points3d"]).all(axis=(1, 2)).sum() >= 10
    clock = (tmp_path / "live" / "clock_sync.jsonl").read_text().splitlines()
    assert clock and set(json.loads(clock[-1])["cameras"]) == set(cams)


def test_dataset_export_from_live_results(rig, tmp_path) -> None:
    from posestudio.commands.dataset import export_dataset
    from posestudio.models.keypoints import BLAZEPOSE33, COCO17

    cams = list(rig.names)
    rec = SessionRecorder(tmp_path / "s", rig, cams, 10.0, videos=False)
    rec.start_at(0)
    for k in range(5):
        rec.observe(frame_set(k, cams, missing=(cams[0],) if k == 2 else ()))
        kp = np.full((3, 33, 3), np.nan)
        kp[:, :, :2] = 40.0 + np.arange(33)[:, None]
        kp[:, :, 2] = 0.9
        kp[1] = np.nan                                             # camera 1 saw nobody
        rec.add_keypoints2d(k, kp, BLAZEPOSE33.joints)
        rec.add_points3d(k, np.ones((17, 3)), np.ones(17))
    rec.close()
    counts = export_dataset(tmp_path / "s", tmp_path / "ds")
    doc = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    assert len(doc["images"]) == counts["images"] == 14              # 3 cameras x 5 sets, one frame missing
    assert len(doc["annotations"]) == counts["annotations"] == 9      # cameras 0 (4 frames) and 2 (5)
    assert doc["categories"][0]["keypoints"] == list(COCO17.joints)
    ann = doc["annotations"][0]
    k = np.asarray(ann["keypoints"]).reshape(17, 3)
    assert k[0, 0] == 40.0 and k[5, 0] == 40.0 + BLAZEPOSE33.index("left_shoulder") and set(k[:, 2]) == {2.0}
    ids = {im["id"] for im in doc["images"]}
    assert all(a["image_id"] in ids for a in doc["annotations"])
    assert all((tmp_path / "ds" / im["file_name"]).is_file() for im in doc["images"])
    with np.load(tmp_path / "ds" / "points3d.npz") as p:
        assert p["points3d"].shape == (5, 17, 3) and list(p["slots"]) == [0, 1, 2, 3, 4]
    cameras = json.loads((tmp_path / "ds" / "cameras.json").read_text())
    assert set(cameras) == set(cams) and np.asarray(cameras[cams[0]]["K"]).shape == (3, 3)
    assert (tmp_path / "ds" / "README.md").read_text().startswith("# PoseStudio dataset")
    assert CameraRig.load(tmp_path / "ds" / "rig.toml").names == cams


@pytest.mark.slow
def test_reconstruct_session_runs_blazepose_on_the_recorded_frames(tmp_path) -> None:
    """A rendered performer recorded through the recorder; ``posestudio reconstruct SESSION`` writes
    SESSION/offline/ and ``posestudio dataset`` exports it."""
    pytest.importorskip("mediapipe")
    from posestudio.synthetic.body_render import render_take
    from posestudio.synthetic.performance import performance_bodies
    from posestudio.synthetic.render_augment import RenderOptions

    fps, n = 15.0, 10     # offline smoothing needs fps > 2 x its 6 Hz cutoff (at 5 fps it raises: a separate bug)
    big = make_studio_rig(3, image_size=(640, 360), seed=2, distortion="mild")
    bodies, _ = performance_bodies(frames=n, fps=fps, people=1, seed=1)
    rec = SessionRecorder(tmp_path / "s", big, big.names, fps, videos=False)
    rec.start_at(0)
    for k, (_, images, _) in enumerate(render_take(big, bodies, RenderOptions(seed=1), 1)):
        t = int(k * 1e9 / fps)
        frames = dict(zip(big.names, images))
        if k == 3:
            frames[big.names[2]] = None                            # a missing frame stays missing
        rec.observe(FrameSet(k, t, frames, tuple(c for c, f in frames.items() if f is None), 0, 0, {}))
    rec.close()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([POSESTUDIO, "reconstruct", str(tmp_path / "s"), "--no-prior"], capture_output=True,
                         text=True, timeout=240, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    with np.load(tmp_path / "s" / "offline" / "points3d.npz") as p:
        assert p["points3d"].shape == (n, 17, 3) and np.isfinite(p["points3d"]).all(axis=(1, 2)).sum() >= n // 2
    out = subprocess.run([POSESTUDIO, "dataset", str(tmp_path / "s"), "--out", str(tmp_path / "ds")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    assert len(doc["images"]) == 3 * n - 1 and doc["info"]["source"] == "offline" and len(doc["annotations"]) >= n


@pytest.mark.slow
def test_serve_record_records_from_the_first_complete_set_and_completes_on_ctrl_c(tmp_path) -> None:
    import re

    from tests.reconstruction.test_live_server import _serve_config

    big = make_studio_rig(4, (1280, 720), seed=3)
    config = _serve_config(tmp_path, big)
    proc = subprocess.Popen([POSESTUDIO, "serve", "--config", str(config), "--duration", "60", "--no-prior",
                             "--quiet", "--record", str(tmp_path / "rec")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    nodes: list[CaptureNode] = []
    try:
        first = proc.stdout.readline()
        found = re.search(r"frames at (tcp://\S+?),", first)
        assert found, proc.stderr.read() if proc.poll() is not None else first
        host = found.group(1).replace("0.0.0.0", "127.0.0.1")
        nodes = [CaptureNode(c, stamped_frames(), host, fps=10.0, encoding=RAW_BGR8) for c in big.names]
        for node in nodes:
            node.start()
        index = tmp_path / "rec" / "index.jsonl"
        wait_for(lambda: index.is_file() and len(index.read_text().splitlines()) >= 10, 30.0, "10 recorded sets")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        for node in nodes:
            node.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "recorded" in out and "status complete" in out, out
    s = open_session(tmp_path / "rec")
    assert s.complete and len(s.index) >= 10 and all(s.index[0].cameras.values())   # from a complete set
    assert (tmp_path / "rec" / "clock_sync.jsonl").read_text().strip()
