"""Helpers shared by the studio's versioned network messages (frames, skeletons, control).

Each message module (``frame_messages``, ``skeleton_stream``, ``control_messages``) checks every
field of what it decodes and names the field in a one-line error; these are the small pieces
those checks share.
"""

from __future__ import annotations

import numpy as np


def show_value(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a malformed message can hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_int(value: object) -> bool:
    """True for Python and numpy integers, False for booleans (msgpack keeps them apart)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
