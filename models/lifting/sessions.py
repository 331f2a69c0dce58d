"""Training windows from a studio's own recordings: a rig and its multi-view 2D, no 3D.

Every frame where at least two cameras each see ``min_view_joints`` confident joints is one
training instant: each camera's window of 2D (lens undone, normalised image coordinates, resampled
to the model's frame rate by :mod:`.windows`), the cameras' poses (for the transform
re-projection loss) and the world's up direction in each camera (for the rotation cycle), each
camera in its upright frame (:mod:`.upright`, as the network lifts). The network learns the
studio's performers, camera heights and detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import read_keypoints2d
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import keypoints_for_rig

from .upright import upright_turn
from .windows import gather_windows, window_frames


@dataclass
class LiftingSession:
    """The training instants of one session (``N`` instants, ``V`` cameras, windows of ``T``).

    Attributes:
        name: the keypoints file.
        xy: ``(N, V, T, 17, 2)`` normalised image coordinates; weight: ``(N, V, T, 17)``.
        rotation: ``(V, 3, 3)`` world-to-camera; translation: ``(V, 3)`` metres;
        up: ``(V, 3)`` the world's Z axis in each camera's axes.
    """

    name: str
    xy: Tensor
    weight: Tensor
    rotation: Tensor
    translation: Tensor
    up: Tensor

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def batch(self, index: Tensor) -> dict[str, Tensor]:
        """Instants ``index`` as a batch with the keys of :func:`~.data.render_windows` (no ``truth``)."""
        b = index.shape[0]
        return {"xy": self.xy[index], "weight": self.weight[index],
                "rotation": self.rotation.expand(b, -1, -1, -1), "translation": self.translation.expand(b, -1, -1),
                "up": self.up.expand(b, -1, -1)}


def load_lifting_session(rig_path: str | Path, keypoints_path: str | Path, window: int, model_fps: float,
                         min_confidence: float = 0.3, min_view_joints: int = 8) -> LiftingSession:
    """Training windows of one recorded session.

    Args:
        rig_path: the session's ``rig.toml``; keypoints_path: its ``keypoints2d.npz``.
        window, model_fps: the network's window and frame rate.
        min_confidence: detections below it are left out.
        min_view_joints: a camera's frame is used when it has at least this many joints.
    Raises:
        InputError: naming the file, when a file is missing or malformed or holds no frame where
            two cameras see the body.
    """
    kp = read_keypoints2d(keypoints_path)
    rig, k17, _ = keypoints_for_rig(CameraRig.load(rig_path), kp, f"{keypoints_path} (rig {rig_path})")
    conf = np.nan_to_num(k17[..., 2])
    # every camera in its upright frame (roll about the optical axis undone), as the network lifts
    turns = upright_turn(rig.rotations)                                                 # (C, 3, 3)
    xy = np.einsum("cij,cfkj->cfki", turns[:, :2, :2], rig.undistort(k17[..., :2]))    # (C, F, 17, 2)
    weight = np.where(np.isfinite(xy).all(-1) & (conf >= min_confidence), conf, 0.0)
    seen = (weight > 0).sum(-1) >= min_view_joints                                     # (C, F)
    centres = np.flatnonzero(seen.sum(0) >= 2)
    if centres.size == 0:
        raise InputError(f"{keypoints_path}: no frame where two cameras each see {min_view_joints} or more joints "
                         f"of confidence >= {min_confidence}")
    frames, present = window_frames(centres, k17.shape[1], window, kp.fps, model_fps)
    wx, ww = gather_windows(xy, weight, frames, present)                               # (C, N, T, 17, ...)
    ww = ww * seen[:, centres, None, None]                      # a camera not seeing the centre frame is left out
    as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    rot = turns @ rig.rotations
    trans = np.einsum("cij,cj->ci", turns, rig.translations)
    return LiftingSession(str(keypoints_path), as_t(wx.transpose(1, 0, 2, 3, 4)), as_t(ww.transpose(1, 0, 2, 3)),
                          as_t(rot), as_t(trans), as_t(rot[:, :, 2]))
