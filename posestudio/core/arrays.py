"""Array type aliases used in every signature: ``FloatArray`` (float64), ``BoolArray``, ``IntArray``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
