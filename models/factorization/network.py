"""Consistent factorization network (C3DPO-like) with a hierarchical shape dictionary.

A :class:`FactorizationNet` reads one person's 2D pose (``J`` joints, normalised by
:func:`normalise_2d`: centred on the mean visible joint, divided by the RMS radius of the visible
joints; missing joints zeroed and flagged by a visibility mask) and predicts

* coefficients of learned 3D bases, giving a canonical shape ``X = sum_k alpha_k S_k`` (+ a fine
  residual ``sum_m beta_m F_m`` from a second head and its own dictionary when ``hierarchical``),
  centred and normalised to unit RMS radius (so the shape is scale-free);
* a viewpoint rotation ``R`` (6D representation -> Gram-Schmidt) and a positive scale ``s`` such
  that the orthographic projection ``s * (R X)[:2]`` reproduces the normalised 2D input.

Losses (:func:`factorization_losses`), none of which uses 3D ground truth:

* pseudo-Huber reprojection on visible joints (``eps = 0.01`` in normalised units);
* canonicalisation (C3DPO): a second small MLP must map ``R' X`` back to ``X`` for random
  rotations ``R'``;
* multi-view consistency: canonical shapes predicted from the ``V`` views of one instant agree,
  measured (a) as the reprojection error of the instant's mean shape through each view's own
  rotation and scale and (b) as the squared distance between the shapes;
* rotation consistency (when the views' camera rotations ``Rc_v`` are known, as in a calibrated
  rig; still no 3D pose): ``Rc_v^T R_v`` must be the same for all views of an instant. Without it
  the network trained here on Bandai found degenerate depth-dominated shapes (see CHECKPOINT.md).

All coordinates here are in normalised units (dimensionless); shapes are given per function.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn


def normalise_2d(kp: Tensor, mask: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Centre and scale 2D poses on their visible joints.

    Args:
        kp: ``(..., J, 2)`` 2D joints (any unit, e.g. pixels or normalised image coordinates);
            values of invisible joints are ignored (may be NaN).
        mask: ``(..., J)`` bool / {0,1} visibility.
    Returns:
        ``(normed, mask, centre, scale)``: ``(..., J, 2)`` normalised joints (zero where
        invisible), ``(..., J)`` float mask, ``(..., 2)`` centre (mean visible joint) and ``(...,)``
        RMS radius of the visible joints about the centre (input unit). Poses with no visible joint
        get a zero centre and unit scale.
    """
    m = mask.to(kp.dtype)
    x = torch.where(m[..., None] > 0, kp, torch.zeros_like(kp))
    n = m.sum(-1).clamp_min(1.0)
    centre = (x * m[..., None]).sum(-2) / n[..., None]
    xc = (x - centre[..., None, :]) * m[..., None]
    scale = ((xc ** 2).sum((-1, -2)) / n).sqrt()
    scale = torch.where(scale > eps, scale, torch.ones_like(scale))
    return xc / scale[..., None, None], m, centre, scale


def rot6d_to_matrix(x: Tensor) -> Tensor:
    """6D rotation representation to rotation matrices (Zhou et al. 2019), by Gram-Schmidt.

    Args:
        x: ``(..., 6)``: two 3-vectors ``a, b``.
    Returns:
        ``(..., 3, 3)`` proper rotations whose rows are ``r1 = a/|a|``, ``r2`` = ``b`` made
        orthogonal to ``r1`` and normalised, ``r3 = r1 x r2``.
    """
    a, b = x[..., :3], x[..., 3:]
    r1 = nn.functional.normalize(a, dim=-1, eps=1e-6)
    r2 = nn.functional.normalize(b - (r1 * b).sum(-1, keepdim=True) * r1, dim=-1, eps=1e-6)
    r3 = torch.cross(r1, r2, dim=-1)
    return torch.stack([r1, r2, r3], dim=-2)


def random_rotations(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """``(n, 3, 3)`` rotations uniform on SO(3) (normalised random quaternions)."""
    q = torch.randn(n, 4, generator=generator, device="cpu", dtype=dtype).to(device)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(n, 3, 3)


def centre_unit(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Centre ``(..., J, 3)`` shapes on their mean joint and scale them to unit RMS radius."""
    xc = x - x.mean(-2, keepdim=True)
    rms = (xc ** 2).sum(-1).mean(-1).clamp_min(eps).sqrt()
    return xc / rms[..., None, None]


def pseudo_huber(d: Tensor, eps: float) -> Tensor:
    """Pseudo-Huber penalty ``eps^2 (sqrt(1 + (d/eps)^2) - 1)`` of non-negative distances ``d``."""
    return eps * eps * (torch.sqrt(1.0 + (d / eps) ** 2) - 1.0)


def _mlp(n_in: int, hidden: int, n_out: int, n_layers: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.1)]
        d = hidden
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


@dataclass
class NetConfig:
    """Architecture of a :class:`FactorizationNet` (stored in checkpoints)."""

    n_joints: int = 17
    n_bases: int = 10
    hierarchical: bool = True
    n_fine: int = 10
    hidden: int = 512
    n_layers: int = 3


class FactorizationNet(nn.Module):
    """2D pose -> (canonical 3D shape, viewpoint rotation, scale).

    Args:
        n_joints: ``J``.
        n_bases: ``K`` coarse bases ``S`` ``(K, J, 3)``.
        hierarchical: add a fine residual dictionary ``F`` ``(n_fine, J, 3)`` with its own head
            (conditioned on the trunk features and the coarse coefficients); False = single-level
            ablation.
        n_fine: number of fine bases.
        hidden: width of the MLPs.
        n_layers: hidden layers of the trunk (the canonicalisation MLP uses the same).
    """

    def __init__(self, n_joints: int = 17, n_bases: int = 10, hierarchical: bool = True,
                 n_fine: int = 10, hidden: int = 512, n_layers: int = 3) -> None:
        super().__init__()
        self.config = NetConfig(n_joints, n_bases, hierarchical, n_fine if hierarchical else 0, hidden, n_layers)
        j = n_joints
        self.trunk = _mlp(3 * j, hidden, hidden, n_layers - 1)
        self.trunk.append(nn.LeakyReLU(0.1))
        self.coarse_head = nn.Linear(hidden, n_bases)
        self.view_head = nn.Linear(hidden, 7)  # 6D rotation + log scale
        self.bases = nn.Parameter(torch.randn(n_bases, j, 3) * (1.0 / math.sqrt(j)))
        if hierarchical:
            self.fine_head = nn.Sequential(nn.Linear(hidden + n_bases, hidden // 2), nn.LeakyReLU(0.1),
                                           nn.Linear(hidden // 2, n_fine))
            self.fine_bases = nn.Parameter(torch.randn(n_fine, j, 3) * (0.1 / math.sqrt(j)))
        # canonicalisation MLP: rotated shape (J*3) -> coefficients of the same dictionaries
        self.canon = _mlp(3 * j, hidden // 2, n_bases + self.config.n_fine, 2)
        with torch.no_grad():  # start near the identity rotation and unit scale
            self.view_head.weight.mul_(0.01)
            self.view_head.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0, 0.0]))

    # ------------------------------------------------------------------ shapes
    def shape_from_coefficients(self, alpha: Tensor, beta: Tensor | None = None) -> Tensor:
        """``(..., K)`` (+ ``(..., n_fine)``) coefficients -> ``(..., J, 3)`` centred unit-RMS shapes."""
        x = torch.einsum("...k,kjd->...jd", alpha, self.bases)
        if beta is not None and self.config.hierarchical:
            x = x + torch.einsum("...m,mjd->...jd", beta, self.fine_bases)
        return centre_unit(x)

    def forward(self, kp: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Predict shape and viewpoint.

        Args:
            kp: ``(..., J, 2)`` normalised 2D joints (see :func:`normalise_2d`), zero where invisible.
            mask: ``(..., J)`` visibility in {0, 1}.
        Returns:
            dict with ``shape`` ``(..., J, 3)`` canonical shape (centred, unit RMS), ``alpha``
            ``(..., K)``, ``beta`` ``(..., n_fine)`` (empty when single-level), ``rotation``
            ``(..., 3, 3)``, ``scale`` ``(...,)`` and ``projection`` ``(..., J, 2)`` =
            ``scale * (R X)[:2]``.
        """
        m = mask.to(kp.dtype)
        lead = kp.shape[:-2]
        inp = torch.cat([kp * m[..., None], m[..., None]], -1).reshape(*lead, -1)
        h = self.trunk(inp)
        alpha = self.coarse_head(h)
        if self.config.hierarchical:
            beta = self.fine_head(torch.cat([h, alpha], -1))
        else:
            beta = alpha.new_zeros(*lead, 0)
        shape = self.shape_from_coefficients(alpha, beta)
        v = self.view_head(h)
        rot = rot6d_to_matrix(v[..., :6])
        scale = torch.exp(v[..., 6].clamp(-5, 5))
        proj = scale[..., None, None] * torch.einsum("...ij,...kj->...ki", rot[..., :2, :], shape)
        return {"shape": shape, "alpha": alpha, "beta": beta, "rotation": rot, "scale": scale,
                "projection": proj}

    def canonicalise(self, shapes: Tensor) -> Tensor:
        """The canonicalisation MLP: ``(..., J, 3)`` (rotated) shapes -> ``(..., J, 3)`` canonical."""
        c = self.canon(shapes.reshape(*shapes.shape[:-2], -1))
        k = self.config.n_bases
        return self.shape_from_coefficients(c[..., :k], c[..., k:] if self.config.hierarchical else None)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())


@dataclass
class LossWeights:
    """Weights of the training losses."""

    reprojection: float = 1.0
    canonicalisation: float = 0.1
    consistency: float = 1.0
    consistency_l2: float = 0.1
    rotation_consistency: float = 1.0
    fine_l2: float = 1e-3
    huber_eps: float = 0.01


def _reprojection(proj: Tensor, kp: Tensor, m: Tensor, eps: float) -> Tensor:
    """Mean pseudo-Huber 2D error over visible joints, divided by ``eps`` (~ distance for d >> eps).

    ``proj`` ``(..., J, 2)`` is first centred on the visible joints, as the input 2D ``kp`` was.
    """
    proj = proj - (proj * m[..., None]).sum(-2, keepdim=True) / m.sum(-1).clamp_min(1.0)[..., None, None]
    d = (proj - kp).norm(dim=-1)
    return (pseudo_huber(d, eps) * m).sum() / m.sum().clamp_min(1.0) / eps


def factorization_losses(net: FactorizationNet, kp: Tensor, mask: Tensor, weights: LossWeights | None = None,
                         generator: torch.Generator | None = None, camera_rotations: Tensor | None = None,
                         view_mask: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Training losses on a batch of multi-view instants.

    Args:
        net: the network.
        kp: ``(B, V, J, 2)`` normalised 2D poses, ``V`` views of each of ``B`` instants (``V = 1``
            disables the consistency loss).
        mask: ``(B, V, J)`` visibility.
        weights: loss weights.
        generator: random rotations for the canonicalisation loss.
        camera_rotations: optional ``(B, V, 3, 3)`` world-to-camera rotations of the views (a
            calibrated rig knows them; no 3D pose is involved): adds the rotation-consistency loss
            (weight ``rotation_consistency``): ``Rc_v^T R_v``, the canonical-to-world rotation
            implied by view ``v``, must agree across views.
        view_mask: optional ``(B, V)`` views that take part in the consistency losses (recorded
            sessions: a camera that saw too little of the body at that instant); default all.
    Returns:
        ``(total, parts)``: the weighted scalar loss and the unweighted parts as floats
        (``reprojection``, ``canonicalisation``, ``consistency`` (mean-shape reprojection),
        ``consistency_l2``, ``rotation_consistency``, ``fine_l2``, ``total``).
    """
    w = weights or LossWeights()
    out = net(kp, mask)
    m = mask.to(kp.dtype)
    reproj = _reprojection(out["projection"], kp, m, w.huber_eps)
    x = out["shape"]
    flat = x.reshape(-1, *x.shape[-2:])
    r = random_rotations(flat.shape[0], generator, device=kp.device, dtype=kp.dtype)
    back = net.canonicalise(torch.einsum("nij,nkj->nki", r, flat))
    canon = ((back - flat) ** 2).sum(-1).mean()
    vm = torch.ones(kp.shape[:2], dtype=kp.dtype, device=kp.device) if view_mask is None else view_mask.to(kp.dtype)
    n_views = vm.sum(1, keepdim=True)                                                     # (B, 1)
    vm = vm * (n_views >= 2)                                                              # instants with a pair
    n_views = vm.sum(1, keepdim=True)
    n_inst = (n_views[:, 0] > 0).sum().clamp_min(1)

    def view_mean(t: Tensor) -> Tensor:
        """Mean over the used views of each instant, ``(B, V, ...)`` -> ``(B, 1, ...)``."""
        wv = vm.reshape(vm.shape + (1,) * (t.dim() - 2))
        return (t * wv).sum(1, keepdim=True) / n_views.clamp_min(1.0).reshape(n_views.shape + (1,) * (t.dim() - 2))

    if kp.shape[1] > 1 and bool((n_views > 0).any()):
        # (i) the instant's mean canonical shape, seen through each view's own rotation and scale,
        # must reproduce that view's 2D (a needle-like shape whose RMS hides the view-dependent
        # detail cannot pass this); (ii) the shapes themselves agree (squared distance, unit RMS).
        x_mean = centre_unit(view_mean(x)).expand_as(x)
        proj_mean = out["scale"][..., None, None] * torch.einsum("...ij,...kj->...ki",
                                                                out["rotation"][..., :2, :], x_mean)
        cons = _reprojection(proj_mean, kp, m * vm[..., None], w.huber_eps)
        unbias = n_views / (n_views - 1).clamp_min(1.0)                                   # (B, 1)
        dev2 = ((x - view_mean(x)) ** 2).sum(-1).mean(-1) * vm                            # (B, V)
        cons_l2 = (dev2.sum(1) / n_views[:, 0].clamp_min(1.0) * unbias[:, 0]).sum() / n_inst
    else:
        cons = cons_l2 = x.new_zeros(())
    if camera_rotations is not None and kp.shape[1] > 1 and w.rotation_consistency > 0 and bool((n_views > 0).any()):
        q = torch.einsum("bvji,bvjk->bvik", camera_rotations.to(x.dtype), out["rotation"])  # Rc^T R
        dq = ((q - view_mean(q)) ** 2).sum((-1, -2)) * vm                                 # (B, V)
        rot_cons = (dq.sum(1) / n_views[:, 0].clamp_min(1.0)).sum() / n_inst
    else:
        rot_cons = x.new_zeros(())
    fine = (out["beta"] ** 2).mean() if out["beta"].numel() else x.new_zeros(())
    total = (w.reprojection * reproj + w.canonicalisation * canon + w.consistency * cons
             + w.consistency_l2 * cons_l2 + w.rotation_consistency * rot_cons + w.fine_l2 * fine)
    parts = {"reprojection": float(reproj.detach()), "canonicalisation": float(canon.detach()),
             "consistency": float(cons.detach()), "consistency_l2": float(cons_l2.detach()),
             "rotation_consistency": float(rot_cons.detach()),
             "fine_l2": float(fine.detach()), "total": float(total.detach())}
    return total, parts


def net_config_dict(net: FactorizationNet) -> dict:
    """The architecture of ``net`` as a plain dict (for checkpoints)."""
    return asdict(net.config)
