"""Synthetic ground-truth generator: rig design, trajectory, renderer accuracy, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec, load_board
from posestudio.calibration.detect import BoardDetector
from posestudio.capture.sources import FrameSource
from posestudio.cli import main
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix
from posestudio.synthetic import (
    board_trajectory,
    default_board,
    distortion_is_valid,
    frame_times,
    load_truth,
    make_studio_rig,
    render_board_image,
    synthesize,
    truth_observations,
    write_synthetic_session,
)


def _facing_pose(cam, board: BoardSpec, distance: float, tilt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Board-to-world pose: board centre on camera's optical axis at ``distance`` m, printed
    face towards the camera, then rotated by the Rodrigues vector ``tilt`` (board axes)."""
    axis = cam.rotation[2]  # optical axis in the world
    ctr = cam.center + distance * axis
    z = axis  # board z points away from the viewer
    y = cam.rotation[1]
    x = np.cross(y, z)
    rot = np.column_stack([x, y, z]) @ rodrigues_to_matrix(tilt)
    half = np.array([board.size_m[0] / 2, board.size_m[1] / 2, 0.0])
    return rot, ctr - rot @ half


def test_studio_rig_is_deterministic_and_realistic():
    a = make_studio_rig(5, (1280, 720), seed=3)
    b = make_studio_rig(5, (1280, 720), seed=3)
    c = make_studio_rig(5, (1280, 720), seed=4)
    assert [cam.name for cam in a] == [f"cam{i}" for i in range(5)]
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca.matrix, cb.matrix)
        np.testing.assert_array_equal(ca.dist, cb.dist)
        np.testing.assert_array_equal(ca.rotation, cb.rotation)
    assert not np.allclose(a[0].matrix, c[0].matrix)
    for cam in a:
        r = np.hypot(*cam.center[:2])
        assert 3.0 <= r <= 4.0 and 1.5 <= cam.center[2] <= 2.5
        assert 0.7 * 1280 <= cam.focal[0] <= 1.0 * 1280
        assert abs(cam.principal_point[0] - 639.5) <= 0.03 * 1280 + 1e-9
        assert -0.35 <= cam.dist[0] <= -0.2
        assert distortion_is_valid(cam.dist, cam.model, cam.image_size, cam.matrix)
        np.testing.assert_allclose(cam.rotation @ cam.rotation.T, np.eye(3), atol=1e-12)
        # the volume centre is in view, near the image centre (small aiming perturbations)
        px = cam.project(np.array([0.0, 0.0, 1.0]))
        assert np.linalg.norm(px - np.array([640, 360])) < 200
    fish = make_studio_rig(2, (1280, 720), seed=0, fisheye=True)
    assert all(cam.model == "fisheye" and cam.dist.size == 4 for cam in fish)


def test_overhead_layout_hangs_every_other_camera_looking_down():
    ring = make_studio_rig(8, (1280, 720), seed=3)
    over = make_studio_rig(8, (1280, 720), seed=3, layout="overhead")
    assert over.metadata["layout"] == "overhead"
    for i, (a, b) in enumerate(zip(ring, over)):
        np.testing.assert_array_equal(a.matrix, b.matrix)  # same draws: the lenses do not change
        if i % 2 == 0:
            np.testing.assert_allclose(a.center, b.center)
            continue
        assert 3.0 <= b.center[2] <= 3.5
        np.testing.assert_allclose(np.hypot(*b.center[:2]), 0.7 * np.hypot(*a.center[:2]))
        down = np.degrees(np.arcsin(-b.rotation[2, 2]))  # optical axis below the horizon, degrees
        assert 30 < down < 55
        assert np.linalg.norm(b.project(np.array([0.0, 0.0, 1.0])) - np.array([640, 360])) < 200
    with pytest.raises(ValueError, match="layout must be one of"):
        make_studio_rig(4, layout="dome")


def test_trajectory_is_smooth_bounded_and_hand_held():
    board = default_board()
    traj = board_trajectory(board, 5.0, seed=1)
    times = np.linspace(0, 5.0, 3001)
    rot, trans = traj.poses(times)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)
    ctr = traj.centers(times)
    np.testing.assert_allclose(trans + np.einsum("nij,j->ni", rot, traj.board_center), ctr, atol=1e-12)
    assert np.hypot(ctr[:, 0], ctr[:, 1]).max() <= 1.5 + 1e-6
    assert ctr[:, 2].min() >= 0.5 - 1e-6 and ctr[:, 2].max() <= 2.0 + 1e-6
    lin, ang = traj.speeds(times)
    assert lin.max() <= 1.0 + 1e-3 and np.degrees(ang.max()) <= 90.0 + 0.1
    r1, t1 = traj(2.5)
    np.testing.assert_array_equal(r1, rot[1500])
    again = type(traj).from_dict(json.loads(json.dumps(traj.to_dict())))
    np.testing.assert_allclose(again.poses(times)[1], trans, atol=1e-12)


def test_take_covers_cameras_pairs_and_partial_boards():
    """Over a 5 s take every camera sees the printed board, pairs see it together, and the
    board is sometimes only partly inside an image (truth only, no rendering)."""
    board = default_board()
    hits = []
    for seed in range(3):
        rig = make_studio_rig(4, (1920, 1080), seed=seed)
        traj = board_trajectory(board, 5.0, seed=seed)
        _, _, corners, faces = truth_observations(rig, board, traj, frame_times(rig, 150, 30.0))
        n = np.isfinite(corners[..., 0]).sum(-1)
        assert ((n >= 6).sum(axis=1) >= 10).all()           # every camera sees it in >= 10 frames
        assert ((n >= 6).sum(axis=0) >= 2).sum() >= 50      # >= 2 cameras at once in >= 50 frames
        hits.append(((n > 0) & (n < board.n_corners)).sum())
    assert all(h > 0 for h in hits), hits


def test_static_render_matches_projection_to_a_tenth_of_a_pixel():
    """Renderer, camera model and detector agree: noiseless, blur-free render of a known pose.

    Measured (960x540, strong distortion, 3 poses, 2x2 supersampling): mean 0.03 px, max 0.07 px.
    """
    board = default_board()
    rig = make_studio_rig(2, (960, 540), seed=5, distortion="strong")
    det = BoardDetector(board)
    errs = []
    for cam, dist, tilt in [(rig[0], 2.0, [0.3, 0.2, 0.4]), (rig[1], 1.6, [-0.4, 0.3, -0.2]),
                            (rig[0], 1.4, [0.1, -0.5, 1.2])]:
        rot, trans = _facing_pose(cam, board, dist, np.array(tilt))
        img = render_board_image(cam, board, rot, trans, background=128.0)
        obs = det.detect(img).observation
        assert obs is not None and len(obs.ids) >= 20
        truth = cam.project(board.corner_points()[obs.ids] @ rot.T + trans)
        errs.append(np.linalg.norm(obs.pixels - truth, axis=1))
    errs = np.concatenate(errs)
    assert errs.mean() < 0.06 and errs.max() < 0.12, (errs.mean(), errs.max())


def test_back_of_board_shows_no_pattern():
    board = default_board()
    cam = make_studio_rig(1, (480, 270), seed=0)[0]
    rot, trans = _facing_pose(cam, board, 1.5, np.array([0.0, np.pi, 0.0]))  # turned around
    img = render_board_image(cam, board, rot, trans, background=30.0)
    assert BoardDetector(board).detect(img).observation is None
    assert (img > 100).mean() > 0.05  # the back of the board is there, just blank
    front = render_board_image(cam, board, *_facing_pose(cam, board, 1.5, np.zeros(3)), background=30.0)
    assert BoardDetector(board).detect(front).observation is not None


def test_in_memory_take_is_deterministic_and_realistic():
    kw = dict(n_cameras=2, n_frames=4, fps=30.0, image_size=(320, 180), seed=7, noise_sigma=2.0)
    a = synthesize(**kw)
    b = synthesize(**kw)
    c = synthesize(**{**kw, "seed": 8})
    assert a.frames.shape == (2, 4, 180, 320) and a.frames.dtype == np.uint8
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.corners, b.corners)
    assert not np.array_equal(a.frames, c.frames)
    # noisy and textured: frames differ from one another even where nothing moves
    assert np.abs(a.frames[0, 0].astype(int) - a.frames[0, 1]).mean() > 1.0
    assert a.frames[0, 0].std() > 10


def test_parallel_rendering_equals_serial():
    kw = dict(n_cameras=2, n_frames=3, image_size=(256, 144), seed=2)
    np.testing.assert_array_equal(synthesize(**kw, workers=1).frames, synthesize(**kw, workers=2).frames)


def test_written_session_videos_truth_and_offsets(tmp_path: Path):
    offsets = [0.0, 0.004, -0.0125]
    s = write_synthetic_session(tmp_path / "take", n_cameras=3, n_frames=10, fps=25.0, image_size=(320, 240),
                                seed=1, time_offsets_s=offsets, video=True, workers=1)
    out = tmp_path / "take"
    for name in ("cam0", "cam1", "cam2"):
        src = FrameSource.open(out / f"{name}.mp4")
        assert src.frame_count() == 10
        assert src.image_size() == (320, 240)
    rig = CameraRig.load(out / "truth_rig.toml")
    np.testing.assert_allclose([c.time_offset for c in rig.cameras], offsets)
    np.testing.assert_allclose(rig[1].matrix, s.rig[1].matrix)
    assert load_board(out / "board.toml").n_corners == s.board.n_corners
    truth = load_truth(out / "truth.json")
    assert truth["seed"] == 1 and truth["fps"] == 25.0 and truth["n_frames"] == 10
    assert truth["time_offsets_s"] == {"cam0": 0.0, "cam1": 0.004, "cam2": -0.0125}
    row = truth["frames"]["cam2"][4]
    assert row["time_s"] == pytest.approx(4 / 25.0 - 0.0125)
    rot, trans = truth["trajectory_obj"](row["time_s"])
    np.testing.assert_allclose(trans, row["tvec"], atol=1e-9)
    # the truth corners are the rig's projection of the board at that pose
    if row["corner_ids"]:
        px = rig[2].project(s.board.corner_points()[row["corner_ids"]] @ rot.T + trans)
        np.testing.assert_allclose(px, row["corners_px"], atol=1e-4)


def test_written_images_are_identical_for_the_same_seed(tmp_path: Path):
    kw = dict(n_cameras=2, n_frames=3, image_size=(200, 120), seed=4, video=False, workers=1)
    a = write_synthetic_session(tmp_path / "a", **kw)
    write_synthetic_session(tmp_path / "b", **kw)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {"board.toml", "truth_rig.toml", "truth.json", "cam0/000000.png", "cam1/000002.png"} <= {
        str(f) for f in files}
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    src = FrameSource.open(tmp_path / "a" / "cam1")
    frames = np.stack([img for _, img in src.frames()])
    assert frames.shape == (3, 120, 200)
    assert a.paths["cam1"] == tmp_path / "a" / "cam1"


def test_cli_synth_rig(tmp_path: Path, capsys):
    rc = main(["synth", "rig", str(tmp_path / "o"), "--cameras", "2", "--frames", "3", "--size", "160x120",
               "--offsets-ms", "0,4", "--images", "--seed", "3", "--workers", "1"])
    assert rc == 0
    assert "cam1" in capsys.readouterr().out
    rig = CameraRig.load(tmp_path / "o" / "truth_rig.toml")
    assert rig[1].time_offset == pytest.approx(0.004)
    assert len(list((tmp_path / "o" / "cam0").glob("*.png"))) == 3
    assert main(["synth", "rig", str(tmp_path / "p"), "--cameras", "2", "--offsets-ms", "1,2,3"]) == 2
    assert main(["synth", "rig", str(tmp_path / "over"), "--cameras", "2", "--frames", "1", "--size", "160x120",
                 "--images", "--workers", "1", "--layout", "overhead"]) == 0
    over = CameraRig.load(tmp_path / "over" / "truth_rig.toml")
    assert over[0].center[2] < 2.5 and 3.0 <= over[1].center[2] <= 3.5
    with pytest.raises(SystemExit):
        main(["synth", "rig", str(tmp_path / "q"), "--size", "big"])
