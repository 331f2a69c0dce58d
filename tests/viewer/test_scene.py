"""What the viewer draws, checked as numbers: bones, joint colours, the floor, the virtual cameras."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.models.keypoints import H36M17
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig
from posestudio.viewer.scene import (
    AXIS_COLOURS,
    CONFIDENCE_COLOURS,
    PERSON_HUES,
    SceneStyle,
    Take,
    confidence_colours,
    default_view_camera,
    floor_extent,
    floor_grid,
    joint_markers,
    rig_view_camera,
    skeleton_lines,
    tile_spheres,
    world_axes,
)

BONES = H36M17.bone_indices


def two_people() -> np.ndarray:
    """``(2, 17, 3)``: a walker and a copy 1.5 m away, with the second's left wrist and head unknown."""
    a = walking_body(1)[0]
    pts = np.stack([a, a + [1.5, 0.0, 0.0]])
    pts[1, H36M17.index("l_wrist")] = np.nan
    pts[1, H36M17.index("head")] = np.nan
    return pts


def test_confidence_colours_run_from_red_through_yellow_to_green_and_grey_when_unknown():
    rgb = confidence_colours(np.array([0.0, 0.5, 1.0, -3.0, 7.0, np.nan, 0.25]))
    np.testing.assert_allclose(rgb[:3], CONFIDENCE_COLOURS)
    np.testing.assert_allclose(rgb[3], CONFIDENCE_COLOURS[0])          # clipped below 0
    np.testing.assert_allclose(rgb[4], CONFIDENCE_COLOURS[2])          # clipped above 1
    np.testing.assert_allclose(rgb[5], [0.6, 0.6, 0.6])
    np.testing.assert_allclose(rgb[6], (CONFIDENCE_COLOURS[0] + CONFIDENCE_COLOURS[1]) / 2)
    assert confidence_colours(np.zeros((4, 17))).shape == (4, 17, 3)


def test_bones_join_known_joints_only_in_each_persons_hue():
    pts = two_people()
    lines = skeleton_lines(pts, BONES)
    # the second person loses the two bones at its unknown joints (elbow-wrist, neck-head)
    assert len(lines.lines) == 2 * len(BONES) - 2
    assert np.isfinite(lines.points).all() and len(lines.points) == 2 * 17 - 2
    seg = lines.segments
    expected = np.concatenate([pts[0][BONES], np.delete(pts[1][BONES], [9, 12], axis=0)])
    np.testing.assert_allclose(seg, expected)
    np.testing.assert_allclose(lines.colours[: len(BONES)], np.tile(PERSON_HUES[0], (len(BONES), 1)))
    np.testing.assert_allclose(lines.colours[len(BONES):], np.tile(PERSON_HUES[1], (len(BONES) - 2, 1)))
    one = skeleton_lines(pts[0], BONES, hues=np.array([[1.0, 0.0, 1.0]]))   # (J, 3) works too
    assert len(one.lines) == len(BONES) and (one.colours == [1.0, 0.0, 1.0]).all()


def test_an_empty_instant_draws_nothing():
    lines = skeleton_lines(np.full((3, 17, 3), np.nan), BONES)
    assert lines.points.shape == (0, 3) and lines.lines.shape == (0, 2)
    assert joint_markers(np.full((3, 17, 3), np.nan), np.ones((3, 17))).centres.shape == (0, 3)


def test_joint_markers_hide_unknown_joints_and_take_confidence_colours():
    pts = two_people()
    conf = np.linspace(0, 1, 34).reshape(2, 17)
    m = joint_markers(pts, conf)
    known = np.isfinite(pts).all(-1).ravel()
    np.testing.assert_allclose(m.centres, pts.reshape(-1, 3)[known])
    np.testing.assert_allclose(m.colours, confidence_colours(conf.ravel()[known]))


def test_floor_grid_lies_on_z0_and_covers_the_take_with_its_margin():
    pts = walking_body(60, start=(-1.2, 0.3), heading_deg=30)
    extent = floor_extent(pts, spacing_m=0.5, margin_m=1.0)
    x0, x1, y0, y1 = extent
    assert x0 <= pts[..., 0].min() - 1.0 and x1 >= pts[..., 0].max() + 1.0
    assert y0 <= pts[..., 1].min() - 1.0 and y1 >= pts[..., 1].max() + 1.0
    assert all(abs(v / 0.5 - round(v / 0.5)) < 1e-9 for v in extent)          # on the grid spacing
    grid = floor_grid(extent, 0.5)
    assert (grid.points[:, 2] == 0).all()
    n_x, n_y = round((x1 - x0) / 0.5) + 1, round((y1 - y0) / 0.5) + 1
    assert len(grid.lines) == n_x + n_y
    assert floor_extent(np.full((2, 17, 3), np.nan)) == (-2.0, 2.0, -2.0, 2.0)


def test_world_axes_are_red_green_blue_along_x_y_z():
    axes = world_axes(0.5)
    np.testing.assert_allclose(axes.segments[:, 1] - axes.segments[:, 0], 0.5 * np.eye(3))
    np.testing.assert_allclose(axes.colours, AXIS_COLOURS)


def test_default_view_frames_every_joint_and_camera_from_above():
    rig = make_studio_rig(4, image_size=(640, 360), distortion="none")
    pts = walking_body(90, start=(-1.0, -0.4), heading_deg=20)
    cam = default_view_camera(pts, rig, size=(800, 450))
    assert cam.image_size == (800, 450)
    everything = np.vstack([pts.reshape(-1, 3), rig.centers])
    assert (cam.world_to_camera(everything)[:, 2] > 0).all()
    assert cam.in_image(cam.project(everything)).all()
    lo, hi = everything.min(0), everything.max(0)
    np.testing.assert_allclose(cam.project((lo + hi) / 2), [399.5, 224.5], atol=1e-6)  # aims at the centre
    assert cam.center[2] > hi[2]                                                          # elevated
    # an empty take without a rig still gives a camera (a 2 m volume at the origin)
    assert default_view_camera(np.full((1, 17, 3), np.nan)).in_image(
        default_view_camera(np.full((1, 17, 3), np.nan)).project(np.array([[0.0, 0.0, 1.0]]))).all()


def test_rig_view_camera_projects_like_the_rig_camera_without_its_lens_and_scales():
    rig = make_studio_rig(3, image_size=(640, 360), distortion="strong")
    pts = walking_body(5).reshape(-1, 3)
    pinhole = rig_view_camera(rig, "cam1")
    ref = rig["cam1"].copy()
    ref.dist = np.zeros(5)
    np.testing.assert_allclose(pinhole.project(pts), ref.project(pts), atol=1e-9)
    assert pinhole.image_size == (640, 360)
    half = rig_view_camera(rig, "cam1", (320, 180))
    # pixel centres at integers: u_half = (u + 0.5) / 2 - 0.5
    np.testing.assert_allclose(half.project(pts), (pinhole.project(pts) + 0.5) / 2 - 0.5, atol=1e-9)
    with pytest.raises(KeyError, match="cam0, cam1, cam2"):
        rig_view_camera(rig, "nope")


def test_take_from_people_reorders_joints_and_pads_shorter_people():
    body = walking_body(10)
    order = np.random.default_rng(0).permutation(17)
    names = [H36M17.joints[i].upper() for i in order]          # any order, any case
    conf = np.tile(np.arange(17) / 16, (10, 1))
    take = Take.from_people([(body[:, order], conf[:, order]), (body[:4, order] + 1, conf[:4, order])], names, 25.0,
                            ["subject", "person_1"])
    assert take.points.shape == (10, 2, 17, 3) and take.fps == 25.0 and take.labels == ("subject", "person_1")
    np.testing.assert_allclose(take.points[:, 0], body)
    np.testing.assert_allclose(take.confidence[:, 0], conf)
    assert np.isnan(take.points[4:, 1]).all() and np.allclose(take.points[:4, 1], body[:4] + 1)
    np.testing.assert_allclose(take.hues, PERSON_HUES[:2])
    assert np.allclose(Take(take.points, take.confidence, ids=np.array([3, 0])).hues, PERSON_HUES[[3, 0]])
    with pytest.raises(ValueError, match="no keypoint layout"):
        Take.from_people([(body[:, :3], conf[:, :3])], ["a", "b", "c"], 30.0)


def test_spheres_are_copies_of_the_template_at_each_joint():
    verts = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]])
    tris = np.array([[0, 1, 2], [1, 3, 2]])
    centres = np.array([[0.0, 0, 0], [5.0, 5, 5]])
    v, t, c = tile_spheres(centres, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.1, (verts, tris))
    assert v.shape == (8, 3) and t.shape == (4, 2 + 1) and c.shape == (8, 3)
    np.testing.assert_allclose(v[4:], centres[1] + 0.1 * verts)
    np.testing.assert_array_equal(t[2:], tris + 4)
    assert (c[4:] == [0, 1, 0]).all()


def test_open3d_geometry_of_an_instant_and_of_the_still_scene():
    pytest.importorskip("open3d", reason="open3d is not installed (pip install -e .)")
    from posestudio.viewer.scene import instant_geometry, static_geometry

    pts = two_people()
    drawn = {d.name: d for d in instant_geometry(pts, np.ones((2, 17)), H36M17, SceneStyle(), 3.0)}
    assert len(drawn["bones"].geometry.lines) == 2 * len(BONES) - 2 and drawn["bones"].line_width_px == 3.0
    assert len(drawn["joints"].geometry.vertices) > 32 and drawn["joints"].line_width_px == 0
    points = {d.name: d for d in instant_geometry(pts, np.ones((2, 17)), H36M17, SceneStyle(), 3.0,
                                                  joint_points_px=8)}
    assert len(points["joints"].geometry.points) == 32 and points["joints"].point_size_px == 8
    assert instant_geometry(np.full((1, 17, 3), np.nan), np.ones((1, 17)), H36M17, SceneStyle(), 3.0) == []
    rig = make_studio_rig(4, image_size=(640, 360), distortion="none")
    still = {d.name: d.geometry for d in static_geometry((-2, 2, -2, 2), rig, SceneStyle())}
    assert set(still) == {"grid", "axes", "frusta"} and len(still["frusta"].lines) == 32
    without = {d.name: d.geometry for d in static_geometry((-2, 2, -2, 2), rig, SceneStyle(), skip_camera="cam2")}
    assert len(without["frusta"].lines) == 24
    np.testing.assert_allclose(np.asarray(without["frusta"].colors)[16:], np.asarray(still["frusta"].colors)[24:])
    assert {d.name for d in static_geometry((-2, 2, -2, 2), None, SceneStyle(show_grid=False))} == {"axes"}
