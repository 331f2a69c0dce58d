"""The factorization network as a 3D pose prior: complete joints the rig could not triangulate.

:class:`FactorizationPrior` loads a checkpoint written by
:mod:`posestudio.models.factorization.train` and

* :meth:`FactorizationPrior.canonical_shape`: normalised 2D pose(s) -> canonical 3D shape(s);
* :meth:`FactorizationPrior.fill`: for every frame, predicts canonical shapes from each camera's 2D
  (one batch over cameras x frames), averages them over the cameras that see enough joints,
  aligns the average to the frame's triangulated joints with a similarity transform (Umeyama, with
  scale; batched SVD, at least ``min_known`` joints) and fills only the missing joints. The
  canonical shape is only defined up to a mirror image (orthographic projection), so both it and its
  mirror are aligned and the one with the smaller residual on the known joints is kept.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from .network import FactorizationNet, normalise_2d

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
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
    def load(cls, path: str | os.PathLike[str], device: str | torch.device | None = None) -> "FactorizationPrior":
        """Load a checkpoint written by :func:`posestudio.models.factorization.train.save_checkpoint`."""
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
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
    def shapes_from_views(self, keypoints2d: FloatArray, rig: Any | None = None, min_confidence: float = 0.3,
                          min_view_joints: int = 6) -> tuple[FloatArray, BoolArray]:
        """Canonical shapes from every camera's 2D, averaged over the usable cameras of each frame.

        Args:
            keypoints2d: ``(C, F, 17, 3)`` x, y (distorted pixels), confidence; NaN where absent.
            rig: a :class:`~posestudio.calibration.rig.CameraRig` (its lenses are undone first), or
                None to use the pixels as they are.
            min_confidence: joints below it count as missing.
            min_view_joints: a camera's view of a frame is used when it has at least this many joints.
        Returns:
            ``(shapes (F, 17, 3), ok (F,))``: unit-RMS canonical shapes (NaN where no camera was usable).
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
        normed, m, _, _ = normalise_2d(xy_t, v_t)
        shapes = self.model(normed, m)["shape"].double()                                  # (C, F, J, 3)
        use = (m.sum(-1) >= min_view_joints).double()                                      # (C, F)
        n = use.sum(0)                                                                     # (F,)
        avg = (shapes * use[..., None, None]).sum(0) / n.clamp_min(1.0)[:, None, None]
        ok = (n > 0).cpu().numpy()
        out = avg.cpu().numpy()
        out[~ok] = np.nan
        return out, ok

    def fill(self, points3d: FloatArray, keypoints2d: FloatArray, rig: Any | None = None, *,
             min_known: int = 4, min_confidence: float = 0.3, min_view_joints: int = 6,
             ) -> tuple[FloatArray, BoolArray]:
        """Fill joints missing from a reconstruction with the aligned canonical shape.

        Args:
            points3d: ``(F, 17, 3)`` triangulated joints, metres; NaN where unknown (every finite
                joint is taken as well triangulated and used for the alignment).
            keypoints2d: ``(C, F, 17, 3)`` the cameras' 2D keypoints (pixels, confidence).
            rig: the calibrated rig of ``keypoints2d`` (or None: pixels used as they are).
            min_known: frames with fewer finite joints are not filled (a similarity needs >= 3
                non-collinear points; 4 keeps it well posed).
            min_confidence: 2D joints below it count as missing.
            min_view_joints: minimum 2D joints for a camera's view to be used.
        Returns:
            ``(filled (F, 17, 3), filled_mask (F, 17))``: known joints unchanged (bit for bit),
            missing joints replaced where the frame could be aligned; ``filled_mask`` marks the
            joints that were filled.
        """
        from posestudio.reconstruction.metrics import procrustes_align

        p3 = np.asarray(points3d, dtype=np.float64)
        known = np.isfinite(p3).all(-1)                                                    # (F, J)
        shapes, ok = self.shapes_from_views(keypoints2d, rig, min_confidence, min_view_joints)
        shapes = np.where(ok[:, None, None], shapes, 0.0)
        target = np.where(known[..., None], p3, 0.0)
        can = ok & (known.sum(-1) >= min_known)
        cand = []
        for s in (shapes, shapes * np.array([1.0, 1.0, -1.0])):                             # shape and mirror
            aligned, fr_ok = procrustes_align(s, target, known, min_joints=min_known)
            res = np.where(known, np.linalg.norm(np.nan_to_num(aligned) - target, axis=-1), 0.0).sum(-1)
            cand.append((aligned, np.where(fr_ok, res, np.inf)))
        use_mirror = cand[1][1] < cand[0][1]
        aligned = np.where(use_mirror[:, None, None], cand[1][0], cand[0][0])
        frame_ok = can & np.isfinite(np.minimum(cand[0][1], cand[1][1]))
        filled_mask = ~known & frame_ok[:, None] & np.isfinite(aligned).all(-1)
        filled = p3.copy()
        filled[filled_mask] = aligned[filled_mask]
        return filled, filled_mask



def evaluate_fill(prior: FactorizationPrior, poses: FloatArray, rig: Any, n_drop: int = 3, seed: int = 0,
                  noise_px: float = 1.5, triangulation_noise_m: float = 0.01,
                  mean_shape: FloatArray | None = None, drop_2d: bool = False) -> dict[str, float]:
    """Error of :meth:`FactorizationPrior.fill` on joints removed from well-triangulated frames.

    The poses are projected into ``rig`` (plus Gaussian pixel noise) to give the 2D; the "known"
    3D joints are the truth plus Gaussian noise (``triangulation_noise_m`` per axis, a good
    triangulation); ``n_drop`` random joints per frame are removed and filled.

    Args:
        prior: the prior.
        poses: ``(F, 17, 3)`` ground-truth world poses, metres (inside the rig's volume).
        rig: a calibrated :class:`~posestudio.calibration.rig.CameraRig`.
        n_drop: joints removed per frame.
        seed: seeds the noise and the removed joints.
        noise_px: 2D noise, pixels.
        triangulation_noise_m: noise of the known 3D joints, metres.
        mean_shape: optional ``(17, 3)`` shape for the baseline of filling from a
            similarity-aligned mean shape.
        drop_2d: also remove the removed joints from every camera's 2D (a joint no camera sees;
            otherwise the cameras still see it, e.g. it failed triangulation's checks).
    Returns:
        dict (millimetres): ``fill_mm`` mean error of the filled joints, ``fill_median_mm``,
        ``filled_fraction`` (of the removed joints), ``mean_shape_fill_mm`` when ``mean_shape`` is
        given, ``centroid_mm`` (filling with the known joints' centroid).
    """
    from posestudio.reconstruction.metrics import procrustes_align

    rng = np.random.default_rng(seed)
    truth = np.asarray(poses, dtype=np.float64)
    f, j, _ = truth.shape
    pix = rig.project(truth)
    kp2d = np.concatenate([pix + rng.normal(0.0, noise_px, pix.shape), np.ones(pix.shape[:-1] + (1,))], -1)
    known3d = truth + rng.normal(0.0, triangulation_noise_m, truth.shape)
    drop = np.zeros((f, j), bool)
    while (drop.sum(1) < n_drop).any():
        rows = np.nonzero(drop.sum(1) < n_drop)[0]
        drop[rows, rng.integers(0, j, rows.size)] = True
    points = np.where(drop[..., None], np.nan, known3d)
    if drop_2d:
        kp2d[:, drop] = np.nan
    filled, fmask = prior.fill(points, kp2d, rig)
    err = np.linalg.norm(filled - truth, axis=-1)[fmask]
    out = {"fill_mm": 1000 * float(err.mean()), "fill_median_mm": 1000 * float(np.median(err)),
           "filled_fraction": float(fmask.sum() / drop.sum())}
    if mean_shape is not None:
        ms = np.broadcast_to(np.asarray(mean_shape, dtype=np.float64), truth.shape)
        aligned, _ = procrustes_align(ms, np.where(drop[..., None], 0.0, points), ~drop)
        out["mean_shape_fill_mm"] = 1000 * float(np.linalg.norm(aligned - truth, axis=-1)[drop].mean())
    centroid = np.nanmean(points, axis=1, keepdims=True)
    out["centroid_mm"] = 1000 * float(np.linalg.norm(centroid - truth, axis=-1)[drop].mean())
    return out
