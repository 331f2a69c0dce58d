"""The trained lifting network as a studio uses it: one camera's 2D over a take to 3D in metres.

:class:`Lifter` loads a checkpoint (default: the shipped ``models/lifting/checkpoint.pt``) and
lifts a take seen by one camera: the 2D is undistorted with the camera's intrinsics, cut into
windows at the model's frame rate (:mod:`.windows`), lifted in batches and put in the world frame
with the camera's pose. Scale comes from the network's root-position branch, or from the
performer's height when it is known (:func:`scale_to_height`: the body and its distance scale
together about the camera centre, which leaves every projection unchanged).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.camera import Camera
from posestudio.models import checkpoints
from posestudio.models.keypoints import H36M17

from .losses import HEIGHT_CHAIN
from .network import LiftingConfig, LiftingNet
from .upright import turn_back, turn_image_points, upright_turn
from .windows import gather_windows, window_frames

CHECKPOINT_MODEL = "lifting"
CHECKPOINT_VERSION = 1
#: The shipped checkpoint.
DEFAULT_CHECKPOINT = Path(__file__).with_name("checkpoint.pt")


@dataclass
class LiftedView:
    """One camera's lift of a take (``F`` frames, ``J`` joints).

    Attributes:
        camera_points: ``(F, J, 3)`` joints in the camera frame, metres (NaN where not lifted).
        world_points: ``(F, J, 3)`` the same in the world frame (NaN where not lifted).
        lifted: ``(F,)`` frames with enough 2D to lift.
        height_m: the lifted body's median height (ankle to head top along the left leg and spine).
    """

    camera_points: FloatArray
    world_points: FloatArray
    lifted: BoolArray
    height_m: float


def body_height(points: FloatArray) -> FloatArray:
    """``(..., 17, 3)`` H36M17 joints to ``(...)`` ankle-to-head-top height along the bones, metres."""
    bones = H36M17.bone_indices[HEIGHT_CHAIN]
    return np.linalg.norm(points[..., bones[:, 0], :] - points[..., bones[:, 1], :], axis=-1).sum(-1)


def scale_to_height(camera_points: FloatArray, height_m: float, lifted_height_m: float) -> FloatArray:
    """Scale a lift about the camera centre so the body is ``height_m`` tall (projections unchanged)."""
    if not (height_m > 0 and lifted_height_m > 0):
        raise ValueError(f"height {height_m} m / lifted height {lifted_height_m} m: expected both > 0")
    return camera_points * (height_m / lifted_height_m)


class Lifter:
    """A trained :class:`~.network.LiftingNet` on a device, lifting takes frame by frame in batches."""

    def __init__(self, model: LiftingNet, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None) -> Lifter:
        """Load a ``posestudio train lifting`` checkpoint (default: the shipped one).

        Raises:
            CheckpointError: missing or foreign file, naming it.
        """
        ckpt = checkpoints.load_checkpoint(path or DEFAULT_CHECKPOINT, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        model = LiftingNet(LiftingConfig(**ckpt["net_config"]))
        model.load_state_dict(ckpt["state_dict"])
        return cls(model, device)

    @property
    def config(self) -> LiftingConfig:
        return self.model.config

    @torch.no_grad()
    def lift_normalised(self, xy: FloatArray, weight: FloatArray, fps: float, min_joints: int = 6,
                        batch: int = 2048, frames: BoolArray | None = None,
                        camera_rotation: FloatArray | None = None) -> tuple[FloatArray, BoolArray]:
        """Lift a take's 2D of one camera.

        Args:
            xy: ``(F, J, 2)`` normalised image coordinates (lens undone); weight: ``(F, J)``
                confidences (0 or NaN where missing); fps: the take's frame rate, Hz;
            min_joints: frames whose own 2D has fewer joints are not lifted;
            frames: ``(F,)`` the frames wanted (None: all); their windows still read the frames
                around them, so a long take with a few wanted frames costs a few windows.
            camera_rotation: ``(3, 3)`` the camera's world-to-camera rotation (world Z up), when
                known: the 2D is lifted in the camera's upright frame (:mod:`.upright`: its roll
                about the optical axis undone, as the network was trained) and turned back.
        Returns:
            ``(points (F, J, 3) camera frame, metres, NaN where not lifted; lifted (F,))``.
        """
        if camera_rotation is not None:
            turn = upright_turn(camera_rotation)
            points, lifted = self.lift_normalised(turn_image_points(np.asarray(xy, dtype=np.float64), turn), weight,
                                                  fps, min_joints, batch, frames)
            return turn_back(points, turn), lifted
        c = self.config
        w = np.nan_to_num(np.asarray(weight, dtype=np.float64))
        n_frames = xy.shape[0]
        lifted = (w > 0).sum(-1) >= min_joints
        if frames is not None:
            lifted &= np.asarray(frames, dtype=bool)
        out = np.full((n_frames, c.n_joints, 3), np.nan)
        centres = np.flatnonzero(lifted)
        mid = c.window // 2
        for s in range(0, centres.size, batch):
            part = centres[s:s + batch]
            frames, present = window_frames(part, n_frames, c.window, fps, c.model_fps)
            wx, ww = gather_windows(np.asarray(xy, dtype=np.float64), w, frames, present)
            res = self.model(torch.as_tensor(wx, dtype=torch.float32, device=self.device),
                             torch.as_tensor(ww, dtype=torch.float32, device=self.device))
            out[part] = res["points"][:, mid].double().cpu().numpy()
        return out, lifted

    def lift_camera(self, camera: Camera, keypoints: FloatArray, fps: float, min_confidence: float = 0.3,
                    min_joints: int = 6, height_m: float | None = None) -> LiftedView:
        """Lift one calibrated camera's 2D keypoints of a take to 3D.

        Args:
            camera: the calibrated camera; keypoints: ``(F, 17, 3)`` H36M17 pixels and confidence;
            fps: Hz; min_confidence: 2D below it is left out; min_joints: see :meth:`lift_normalised`;
            height_m: the performer's height, metres, when known (else the network's scale).
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        xy = camera.undistort_points(kp[..., :2])
        conf = np.nan_to_num(kp[..., 2])
        weight = np.where(np.isfinite(xy).all(-1) & (conf >= min_confidence), conf, 0.0)
        cam_points, lifted = self.lift_normalised(xy, weight, fps, min_joints, camera_rotation=camera.rotation)
        heights = body_height(cam_points[lifted]) if lifted.any() else np.array([np.nan])
        height = float(np.median(heights))
        if height_m is not None and np.isfinite(height):
            cam_points = scale_to_height(cam_points, height_m, height)
            height = float(height_m)
        world = np.einsum("ji,fkj->fki", camera.rotation, cam_points - camera.translation)
        return LiftedView(cam_points, world, lifted, height)
