"""Camera rigs as 3D line geometry (frustums), for the Open3D viewer and offscreen renders."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.rig import CameraRig


def frustum_lines(rig: CameraRig, depth_m: float = 0.3) -> tuple[FloatArray, NDArray[np.int64]]:
    """Each camera as a pyramid from its centre to its image corners at ``depth_m``.

    Returns:
        ``(points (5C, 3) metres in the world frame, lines (8C, 2) point-index pairs)``; per
        camera the points are the centre then the four image corners (top-left, top-right,
        bottom-right, bottom-left).
    """
    pts, lines = [], []
    for c, cam in enumerate(rig.cameras):
        w, h = cam.image_size
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        pts.append(cam.center[None])
        pts.append(cam.backproject_to_depth(corners, np.full(4, depth_m)))
        b = 5 * c
        lines += [[b, b + 1], [b, b + 2], [b, b + 3], [b, b + 4], [b + 1, b + 2], [b + 2, b + 3], [b + 3, b + 4],
                  [b + 4, b + 1]]
    return np.concatenate(pts), np.asarray(lines, np.int64)


def rig_line_set(rig: CameraRig, depth_m: float = 0.3):
    """An ``open3d.geometry.LineSet`` of the rig's frustums (one colour per camera)."""
    # Imported here: open3d takes a second to import and needs the system's libusb; only drawing needs it.
    import open3d as o3d

    points, lines = frustum_lines(rig, depth_m)
    palette = np.array([[0.27, 0.47, 0.67], [0.93, 0.40, 0.47], [0.13, 0.53, 0.20], [0.80, 0.73, 0.27],
                        [0.40, 0.80, 0.93], [0.67, 0.20, 0.47]])
    colours = np.repeat(palette[np.arange(len(rig)) % len(palette)], 8, axis=0)
    ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(points), o3d.utility.Vector2iVector(lines))
    ls.colors = o3d.utility.Vector3dVector(colours)
    return ls
