"""Choosing the rig's world frame (right-handed, Z up, metres) after calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .camera import Camera

FloatArray = NDArray[np.float64]

#: Board axes -> world axes: x stays, y and z flip, so Z points out of the printed face (up when
#: the board lies face up on the floor) and the frame stays right-handed.
BOARD_TO_WORLD_AXES = np.diag([1.0, -1.0, -1.0])


@dataclass
class WorldFrame:
    """A rigid change of world frame ``X_new = R @ X_old + t``.

    Attributes:
        rotation: ``(3, 3)``; translation: ``(3,)`` metres; description: for the rig file.
    """

    rotation: FloatArray
    translation: FloatArray
    description: str

    def apply(self, cam: Camera) -> Camera:
        """The camera with its world-to-camera pose expressed in the new world frame."""
        r = cam.rotation @ self.rotation.T
        return cam.with_pose(r, cam.translation - r @ self.translation)

    def apply_points(self, points: FloatArray) -> FloatArray:
        """``(..., 3)`` old-world points in the new frame."""
        return points @ self.rotation.T + self.translation


def world_frame_from_board(r_board: FloatArray, t_board: FloatArray, frame: int) -> WorldFrame:
    """World frame on the board at one frame: origin at its first square's outer corner, X along its
    columns, Z out of the printed face.

    Args:
        r_board, t_board: board-to-(old)world pose at that frame.
    """
    rot = BOARD_TO_WORLD_AXES @ r_board.T
    return WorldFrame(rot, -rot @ t_board,
                      f"board at frame {frame}: origin at the board's outer corner of square (0, 0), X along "
                      "its columns, Z out of its printed face (up when it lies face up on the floor); metres")


def default_world_frame(cams: list[Camera], board_positions: list[FloatArray]) -> WorldFrame:
    """Origin at the centre of the board's path, Z up along the cameras' mean up direction, X
    towards the first camera's horizontal viewing direction (negated), metres.

    Studio cameras are mounted roughly upright, so their mean up vector (``-y`` of each camera, in
    world coordinates) is a good estimate of the vertical when no board lay on the floor.
    """
    up = np.mean([-c.rotation[1] for c in cams], axis=0)
    z = up / np.linalg.norm(up)
    fwd = cams[0].rotation[2]
    x = -(fwd - (fwd @ z) * z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: new axes in old coordinates
    centre = np.median(np.stack(board_positions), axis=0)
    return WorldFrame(rot, -rot @ centre,
                      f"origin at the centre of the board's path, Z up along the cameras' mean up direction, "
                      f"X pointing from the capture volume towards camera {cams[0].name} (horizontal); metres")
