"""How noisy each board view's corners are, as weights for the bundle adjustment.

Corner noise is not the same in every view: a board moving fast (motion blur), seen at a grazing
angle or out of focus gives corners several times noisier than a sharp, square-on view of the
same camera (rendered 32-camera ring: median corner error 0.09 px, but runs of consecutive blurred
frames at 0.5-0.7 px). Weighing every corner alike lets those views pull a camera whose board
views are few or cover a small part of its image; its focal length then lands several of its
reported standard deviations off. Weighing each view by the inverse of its noise variance, as
estimated from its own residuals after a first solve, is the maximum-likelihood answer when the
noise differs between views.

A view's noise is estimated robustly (median residual norm) and shrunk towards the typical
corner's noise with a prior worth :data:`PRIOR_CORNERS` corners, so that a view with few corners,
or one whose residuals happen to be small, does not get an extreme weight.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray

#: The median norm of a 2D isotropic Gaussian residual, in standard deviations (sqrt(2 ln 2)).
RAYLEIGH_MEDIAN = 1.1774
#: Corners' worth of the typical noise each view's estimate is shrunk towards.
PRIOR_CORNERS = 8.0
#: Relative weights are kept within these bounds (a view at most this much more or less certain
#: than the typical corner).
MIN_PRECISION, MAX_PRECISION = 1.0 / 100.0, 4.0


def robust_sigma(err: FloatArray) -> float:
    """Standard deviation per coordinate of 2D residuals from the median of their norms ``(N,)``, pixels."""
    return float(np.median(err)) / RAYLEIGH_MEDIAN


def view_precisions(view: IntArray, err: FloatArray) -> FloatArray:
    """Each corner's relative weight: the typical corner's noise variance over its view's.

    Args:
        view: ``(N,)`` view index of each corner (one per camera and board pose; any integers).
        err: ``(N,)`` residual norms after a solve, pixels.
    Returns:
        ``(N,)`` weights in ``[MIN_PRECISION, MAX_PRECISION]``; 1 for a view as noisy as the median
        corner.
    """
    if len(err) == 0:
        return np.ones(0)
    sigma = max(robust_sigma(err), 1e-9)
    _, inverse, counts = np.unique(view, return_inverse=True, return_counts=True)
    # Median of each view's residual norms: sort by (view, norm) and pick each group's middle.
    order = np.lexsort((err, inverse))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lower = err[order[starts + (counts - 1) // 2]]
    upper = err[order[starts + counts // 2]]
    view_sigma2 = (0.5 * (lower + upper) / RAYLEIGH_MEDIAN) ** 2
    shrunk = (counts * view_sigma2 + PRIOR_CORNERS * sigma**2) / (counts + PRIOR_CORNERS)
    precision = np.clip(sigma**2 / shrunk, MIN_PRECISION, MAX_PRECISION)
    return precision[inverse]
