"""The detector backends by name (``--detector``), created with their options or checkpoint."""

from __future__ import annotations

from pathlib import Path

from posestudio.core.errors import InputError

from .base import Detector2D

DETECTORS = ("blazepose", "tce")
"""Backend names: MediaPipe BlazePose (pretrained, shipped with mediapipe) and our TCE network."""


def create_detector(name: str, checkpoint: str | Path | None = None, max_people: int = 2,
                    device: str = "auto") -> Detector2D:
    """A detector backend ready for :meth:`Detector2D.reset`.

    Args:
        name: one of :data:`DETECTORS`.
        checkpoint: TCE weights (default: the shipped checkpoint); not used by BlazePose.
        max_people: people looked for per view (BlazePose; TCE follows one person per view).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"`` for TCE.
    Raises:
        InputError: an unknown name, or a checkpoint given to a backend that takes none.
        DetectorUnavailable: the backend's library is not installed.
    """
    if name == "blazepose":
        if checkpoint is not None:
            raise InputError(f"--checkpoint {checkpoint}: BlazePose uses MediaPipe's bundled model, not a checkpoint")
        from .blazepose import BlazePoseDetector, BlazePoseOptions  # loads MediaPipe: only when chosen

        return BlazePoseDetector(BlazePoseOptions(max_people=max_people))
    if name == "tce":
        from posestudio.models.tce.detector import DEFAULT_CHECKPOINT, TCEDetector  # loads torch: only when chosen

        return TCEDetector.from_checkpoint(checkpoint or DEFAULT_CHECKPOINT, device=device)
    raise InputError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")
