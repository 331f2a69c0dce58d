"""The trained factorization network as a 3D pose prior: canonical body shapes from 2D views.

:class:`FactorizationPrior` loads a checkpoint written by
:mod:`posestudio.models.factorization.train` (through :mod:`posestudio.models.checkpoints`, which
checks its format) and gives

* :meth:`FactorizationPrior.canonical_shape`: normalised 2D pose(s) -> canonical 3D shape(s);
* :meth:`FactorizationPrior.read_views`: every camera's reading of every frame in one batch
  (:class:`ViewReadings`: canonical shapes, rotations, scales).

Placing those shapes in a reconstruction (filling joints the rig could not triangulate) is the
pipeline's job: :mod:`posestudio.reconstruction.prior_fill`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posestudio.models.checkpoints import load_checkpoint

from .network import FactorizationNet, normalise_2d

#: The checkpoint that ships beside this module (``CHECKPOINT.md`` says how it was made).
DEFAULT_CHECKPOINT = Path(__file__).with_name("checkpoint.pt")
#: What :func:`~posestudio.models.checkpoints.load_checkpoint` expects in a factorization checkpoint.
CHECKPOINT_MODEL = "factorization"
CHECKPOINT_VERSION = 1
from posestudio.core.arrays import BoolArray, FloatArray

ArrayLikeT = Any


class FactorizationPrior:
    """A trained :class:`FactorizationNet` used as a pose prior.

    Args:
        model: the network.
        device: where to run it (default: cuda if available, else cpu).
        info: checkpoint metadata (config, command, log).
    """

    def __init__(self, model: FactorizationNet, device: str | torch.device | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.info = info or {}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None,
             device: str | torch.device | None = None) -> "FactorizationPrior":
        """Load a checkpoint written by :func:`posestudio.models.factorization.train.save_checkpoint`
        (default: the shipped one); a file of another kind raises
        :class:`~posestudio.models.checkpoints.CheckpointError` naming it."""
        ckpt = load_checkpoint(DEFAULT_CHECKPOINT if path is None else path, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        model = FactorizationNet(**ckpt["net_config"])
        model.load_state_dict(ckpt["state_dict"])
        info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        return cls(model, device, info)

    @torch.no_grad()
    def canonical_shape(self, kp2d_normalised: ArrayLikeT, mask: ArrayLikeT) -> FloatArray:
        """Canonical 3D shape(s) of normalised 2D pose(s).

        Args:
            kp2d_normalised: ``(..., 17, 2)`` 2D joints normalised as by
                :func:`~posestudio.models.factorization.network.normalise_2d` (zero or NaN where missing).
            mask: ``(..., 17)`` visibility.
        Returns:
            ``(..., 17, 3)`` centred, unit-RMS canonical shapes (dimensionless; align them with a
            similarity transform to use them in metres).
        """
        kp = torch.as_tensor(np.nan_to_num(np.asarray(kp2d_normalised, dtype=np.float32)), device=self.device)
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32), device=self.device)
        return self.model(kp, m)["shape"].double().cpu().numpy()

    @torch.no_grad()
    def read_views(self, keypoints2d: FloatArray, rig: Any | None = None, min_confidence: float = 0.3,
                   min_view_joints: int = 6) -> "ViewReadings":
        """Run the network on every camera's 2D pose of every frame (one batch).

        Args:
            keypoints2d: ``(C, F, 17, 3)`` x, y (distorted pixels), confidence; NaN where absent.
            rig: a :class:`~posestudio.core.rig.CameraRig` (its lenses are undone first,
                giving normalised image coordinates), or None to use the pixels as they are.
            min_confidence: joints below it count as missing.
            min_view_joints: a camera's view of a frame is used when it has at least this many joints.
        Returns:
            :class:`ViewReadings`.
        """
        kp = np.asarray(keypoints2d, dtype=np.float64)
        conf = np.nan_to_num(kp[..., 2], nan=0.0)
        valid = np.isfinite(kp[..., :2]).all(-1) & (conf >= min_confidence)             # (C, F, J)
        xy = np.where(valid[..., None], kp[..., :2], np.nan)
        if rig is not None:
            xy = rig.undistort(xy)
            valid &= np.isfinite(xy).all(-1)
        xy_t = torch.as_tensor(np.nan_to_num(xy), dtype=torch.float32, device=self.device)
        v_t = torch.as_tensor(valid, device=self.device)
        normed, m, centre, radius = normalise_2d(xy_t, v_t)
        out = self.model(normed, m)
        use = (m.sum(-1) >= min_view_joints).cpu().numpy()                                 # (C, F)
        return ViewReadings(xy=np.where(valid[..., None], xy, np.nan), valid=valid, confidence=conf,
                            shapes=out["shape"].double().cpu().numpy(),
                            rotation=out["rotation"].double().cpu().numpy(),
                            scale=out["scale"].double().cpu().numpy(),
                            centre=centre.double().cpu().numpy(), radius=radius.double().cpu().numpy(), use=use)

    def shapes_from_views(self, keypoints2d: FloatArray, rig: Any | None = None, min_confidence: float = 0.3,
                          min_view_joints: int = 6) -> tuple[FloatArray, BoolArray]:
        """Canonical shapes from every camera's 2D, averaged over the usable cameras of each frame.

        Args: as :meth:`read_views`.
        Returns:
            ``(shapes (F, 17, 3), ok (F,))``: unit-RMS canonical shapes (NaN where no camera was usable).
        """
        return self.read_views(keypoints2d, rig, min_confidence, min_view_joints).mean_shape()


#: Mirror image of a canonical shape (orthographic projection cannot tell a shape from it).
MIRROR = np.diag([1.0, 1.0, -1.0])


@dataclass
class ViewReadings:
    """The network's reading of every camera's 2D pose, ``C`` cameras x ``F`` frames.

    Attributes:
        xy: ``(C, F, 17, 2)`` undistorted normalised image coordinates (pixels when no rig was
            given), NaN where a joint is missing or below the confidence threshold.
        valid: ``(C, F, 17)`` joints used; confidence: ``(C, F, 17)`` detector confidence.
        shapes: ``(C, F, 17, 3)`` canonical shapes (unit RMS); rotation: ``(C, F, 3, 3)``
            canonical-to-view rotations; scale: ``(C, F)`` orthographic scale of the normalised pose.
        centre: ``(C, F, 2)`` mean visible joint; radius: ``(C, F)`` RMS radius of the visible
            joints (units of ``xy``).
        use: ``(C, F)`` views with enough joints to be read.
    """

    xy: FloatArray
    valid: BoolArray
    confidence: FloatArray
    shapes: FloatArray
    rotation: FloatArray
    scale: FloatArray
    centre: FloatArray
    radius: FloatArray
    use: BoolArray

    def mean_shape(self) -> tuple[FloatArray, BoolArray]:
        """``(shapes (F, 17, 3), ok (F,))``: canonical shapes averaged over each frame's usable views."""
        use = self.use.astype(np.float64)
        n = use.sum(0)
        avg = (self.shapes * use[..., None, None]).sum(0) / np.maximum(n, 1.0)[:, None, None]
        ok = n > 0
        avg[~ok] = np.nan
        return avg, ok
