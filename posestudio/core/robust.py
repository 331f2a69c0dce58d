"""Robust loss weights for iteratively reweighted least squares (Huber, Cauchy).

Each ``*_weights`` function gives the IRLS weight ``rho'(e) / e`` of a residual norm ``e``; each
``*_cost`` the loss summed, so a solver can accept or reject a step on the same cost it reweights.
"""

from __future__ import annotations

import numpy as np

from .arrays import FloatArray


def huber_weights(err: FloatArray, delta: float) -> FloatArray:
    """IRLS weights of the Huber loss: 1 up to ``delta``, ``delta / err`` beyond.

    Args:
        err: ``(...)`` non-negative residual norms (any unit).
        delta: the threshold, same unit.
    Returns:
        ``(...)`` weights in (0, 1].
    """
    return np.where(err <= delta, 1.0, delta / np.maximum(err, 1e-12))


def huber_cost(err: FloatArray, delta: float) -> float:
    """Huber loss summed over ``err`` (``e^2 / 2`` up to ``delta``, linear beyond)."""
    return float(np.sum(np.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta))))


def cauchy_weights(err2: FloatArray, scale: float) -> FloatArray:
    """IRLS weights of the Cauchy loss ``s^2 log(1 + e^2 / s^2)``: ``1 / (1 + e^2 / s^2)``.

    Args:
        err2: ``(...)`` squared residual norms, in units of their standard deviation.
        scale: the residual size (same units) beyond which weights fall off.
    Returns:
        ``(...)`` weights in (0, 1].
    """
    return 1.0 / (1.0 + err2 / scale**2)


def cauchy_cost(err2: FloatArray, scale: float) -> FloatArray:
    """Cauchy loss ``s^2 log(1 + e^2 / s^2)`` of squared residual norms (elementwise)."""
    return scale**2 * np.log1p(err2 / scale**2)
