"""Peers that PoseStudio's rig calibration is benchmarked against (benchmarks only).

Each peer module offers ``calibrate(...) -> PeerResult`` (or a loader for a stored result).
A :class:`PeerResult` unpacks as ``rig, seconds = result``; on failure ``rig`` is None and
``result.failure`` says why. None of these peers is a runtime dependency of PoseStudio:
aniposelib is installed for benchmarks only (see ``benchmarks/README.md``).

- :mod:`benchmarks.peers.aniposelib_peer`: aniposelib 0.8.0's own pipeline from videos.
- :mod:`benchmarks.peers.opencv_multiview_peer`: ``cv2.calibrateMultiview`` (OpenCV 5) on
  PoseStudio's own board detections.
- :mod:`benchmarks.peers.caliscope_peer`: caliscope's stored calibration of the caliscope session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from posestudio.core.rig import CameraRig


@dataclass
class PeerResult:
    """One peer's calibration run.

    Attributes:
        peer: peer name, e.g. ``"aniposelib"``.
        version: the peer's version string (printed by the benchmark).
        rig: the calibrated rig (world-to-camera poses, metres), or None on failure.
        seconds: wall time of the calibration proper, seconds (detection included where the
            peer detects; see ``timings`` for the parts).
        failure: why it failed ('' on success).
        timings: named parts of the wall time, seconds (e.g. ``detection``, ``solve``,
            ``invert_frames``; the latter is preparation, not counted in ``seconds``).
        notes: things the benchmark output must say (e.g. "ran on colour-inverted copies").
        info: peer-specific numbers (its own reported error, frames used, ...).
    """

    peer: str
    version: str
    rig: CameraRig | None
    seconds: float
    failure: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator:
        """Unpack as ``rig, seconds``."""
        yield self.rig
        yield self.seconds

    @property
    def ok(self) -> bool:
        return self.rig is not None

    def label(self) -> str:
        """``"name version"`` for tables."""
        return f"{self.peer} {self.version}".strip()
