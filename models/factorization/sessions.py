"""Training data from a studio's own recordings: multi-view 2D keypoints and the rig that saw them.

A session is a calibrated rig (``rig.toml``) and its 2D keypoints (``keypoints2d.npz``, any known
layout). Every frame where at least two cameras see enough of the body is one training instant:
each camera's 2D pose (lens undone, normalised as the network expects) plus that camera's
rotation, which the rotation-consistency loss uses. No 3D is involved, as with the motion-capture
projections; the network learns the studio's own performers, camera heights and detector.
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

from .network import normalise_2d


@dataclass
class SessionViews:
    """The training instants of one session (``N`` instants seen by the rig's ``V`` cameras).

    Attributes:
        name: where it came from (the keypoints file).
        kp: ``(N, V, 17, 2)`` normalised 2D poses (zero where a joint is missing).
        mask: ``(N, V, 17)`` joints used (a whole view is zero where the camera saw too little).
        view_mask: ``(N, V)`` views used.
        rotation: ``(N, V, 3, 3)`` world-to-camera rotations.
    """

    name: str
    kp: Tensor
    mask: Tensor
    view_mask: Tensor
    rotation: Tensor

    def __len__(self) -> int:
        return int(self.kp.shape[0])

    def batch(self, index: Tensor) -> dict[str, Tensor]:
        """The instants ``index`` as a training batch (keys as :func:`~.data.render_views`, plus ``view_mask``)."""
        return {"kp": self.kp[index], "mask": self.mask[index], "view_mask": self.view_mask[index],
                "rotation": self.rotation[index]}


def load_session(rig_path: str | Path, keypoints_path: str | Path, min_confidence: float = 0.3,
                 min_view_joints: int = 6) -> SessionViews:
    """Training instants of one recorded session.

    Args:
        rig_path: the session's ``rig.toml``.
        keypoints_path: its ``keypoints2d.npz`` (cameras must be in the rig; joints in a known layout).
        min_confidence: detections below it are left out.
        min_view_joints: a camera's view of a frame is used when it has at least this many joints.
    Returns:
        :class:`SessionViews` (frames with fewer than two usable views are skipped).
    Raises:
        InputError: naming the file, when a file is missing or malformed or holds no usable frame.
    """
    rig, k17, _ = keypoints_for_rig(CameraRig.load(rig_path), read_keypoints2d(keypoints_path),
                                    f"{keypoints_path} (rig {rig_path})")             # k17: (C, F, 17, 3)
    valid = np.isfinite(k17[..., :2]).all(-1) & (np.nan_to_num(k17[..., 2]) >= min_confidence)
    xy = rig.undistort(np.where(valid[..., None], k17[..., :2], np.nan))
    valid &= np.isfinite(xy).all(-1)
    use = valid.sum(-1) >= min_view_joints                                              # (C, F)
    frames = np.nonzero(use.sum(0) >= 2)[0]
    if frames.size == 0:
        raise InputError(f"{keypoints_path}: no frame where two cameras each see {min_view_joints} or more joints")
    valid = valid[:, frames] & use[:, frames, None]
    xy_t = torch.as_tensor(np.nan_to_num(xy[:, frames]).transpose(1, 0, 2, 3), dtype=torch.float32)
    v_t = torch.as_tensor(valid.transpose(1, 0, 2))
    normed, m, _, _ = normalise_2d(xy_t, v_t)
    rot = torch.as_tensor(rig.rotations, dtype=torch.float32)
    return SessionViews(str(keypoints_path), normed, m, torch.as_tensor(use[:, frames].T, dtype=torch.float32),
                        rot[None].expand(len(frames), -1, -1, -1).contiguous())
