"""Rig frustums for the viewer; also proves the Open3D dependency imports on this machine."""

from __future__ import annotations

import numpy as np

from posestudio.synthetic.studio_rig import ring_rig
from posestudio.viewer.rig_geometry import frustum_lines, rig_line_set


def test_frustums_start_at_the_centres_and_reproject_to_the_image_corners():
    rig = ring_rig(3)
    points, lines = frustum_lines(rig, depth_m=0.5)
    assert points.shape == (15, 3) and lines.shape == (24, 2)
    for c, cam in enumerate(rig.cameras):
        np.testing.assert_allclose(points[5 * c], cam.center)
        w, h = cam.image_size
        np.testing.assert_allclose(cam.project(points[5 * c + 1:5 * c + 5]),
                                   [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], atol=1e-6)
        np.testing.assert_allclose(cam.world_to_camera(points[5 * c + 1:5 * c + 5])[:, 2], 0.5, atol=1e-9)


def test_open3d_line_set():
    ls = rig_line_set(ring_rig(4))  # import open3d needs the system's libusb (installed by make)
    assert len(ls.points) == 20 and len(ls.lines) == 32 and len(ls.colors) == 32
