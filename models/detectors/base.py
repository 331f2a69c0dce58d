"""The one interface every 2D keypoint detector implements.

A detector sees a take frame set by frame set (one BGR image per view) and returns, per view, the
people it found in that frame as keypoints in its :attr:`Detector2D.layout`, in pixels of the full
frame. Video models also look at neighbouring frames: :attr:`Detector2D.context` says how many
frames each side they use, and the caller (``models/detectors/run.py``) hands them a
:class:`FrameWindow` that many frames wide, each frame decoded once and shared by every stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.models.keypoints import KeypointLayout

Image = NDArray[np.uint8]
"""One BGR frame, ``(H, W, 3)`` uint8, as OpenCV decodes it."""


@dataclass(frozen=True)
class FrameWindow:
    """The frames a detector sees for one instant ``t`` of a take.

    Attributes:
        frames: ``frames[v][k]`` is view ``v``'s frame at ``t - context + k`` (``k`` in
            ``0 .. 2 * context``); ``None`` where that frame is outside the take. The centre entry
            ``frames[v][context]`` is never ``None``.
        context: frames each side of ``t``.
        index: the frame number ``t`` in the take.
    """

    frames: Sequence[Sequence[Image | None]]
    context: int
    index: int

    @property
    def n_views(self) -> int:
        return len(self.frames)

    def centre(self, view: int) -> Image:
        """View ``view``'s frame at ``t``."""
        return self.frames[view][self.context]  # type: ignore[return-value]


class Detector2D(ABC):
    """A 2D keypoint detector for several views of one take.

    Subclasses set :attr:`name`, :attr:`layout` and :attr:`context`. :meth:`reset` starts a new take
    (tracking state per view is dropped); :meth:`detect` is then called once per instant, in order.
    """

    name: str = "detector"
    layout: KeypointLayout
    context: int = 0

    @abstractmethod
    def reset(self, n_views: int) -> None:
        """Start a take of ``n_views`` views: forget every view's tracking state."""

    @abstractmethod
    def detect(self, window: FrameWindow) -> list[FloatArray]:
        """People found at the window's centre instant, per view.

        Returns:
            One array per view, ``(P, J, 3)``: ``x, y`` in pixels of that view's full frame and a
            confidence in ``[0, 1]``, in :attr:`layout` order; NaN where a joint was not found. ``P``
            is 0 when nobody was found; the person this view is tracking, if any, comes first.
        """

    def close(self) -> None:
        """Release native resources (graphs, sessions); the detector is unusable afterwards."""
