"""Consistent factorization network: a learned 3D pose prior trained from 2D views only.

A C3DPO-like network (see ``/work/shared/MODELS.md`` section 2) factorises one person's 2D pose into
a canonical 3D shape (coefficients of a learned, optionally hierarchical, basis dictionary) and a
viewpoint rotation. Modules:

* :mod:`.network` — :class:`FactorizationNet`, 6D rotations, normalisation, the losses;
* :mod:`.data` — Bandai motion capture (or synthetic poses) seen by random virtual cameras;
* :mod:`.train` — ``train(config) -> (model, log)`` and the command line;
* :mod:`.prior` — :class:`FactorizationPrior`: canonical shapes and filling of missing 3D joints.

``checkpoint.pt`` (beside this file) is the shipped model; ``CHECKPOINT.md`` says how it was made.
"""

#: The shipped checkpoint.
from pathlib import Path as _Path

from .network import FactorizationNet, LossWeights, factorization_losses, normalise_2d, rot6d_to_matrix
from .prior import FactorizationPrior

DEFAULT_CHECKPOINT = _Path(__file__).with_name("checkpoint.pt")

__all__ = ["FactorizationNet", "FactorizationPrior", "LossWeights", "factorization_losses", "normalise_2d",
           "rot6d_to_matrix", "DEFAULT_CHECKPOINT"]
