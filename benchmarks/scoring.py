"""Scores for the calibration benchmark, all computed on one independent set of detections.

- Against ground truth (synthetic takes): :func:`posestudio.calibration.compare.score_against_truth`
  (rigid alignment of world frames, then focal %, principal point px, centre mm, rotation deg).
- Without ground truth (real footage): :func:`posestudio.calibration.quality.board_size_error`:
  board corners triangulated in frames seen by two or more cameras, pairwise distances compared
  with the printed board's (mm), and the reprojection RMS of those triangulated corners (px).
  Frames are paired by index unless ``time_aligned`` (then each camera's corner tracks are first
  resampled at its estimated time offset; only meaningful for rigs that estimate offsets).
"""

from __future__ import annotations

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.compare import align_rig_to_truth, match_cameras, score_against_truth
from posestudio.calibration.detect import CameraDetections
from posestudio.calibration.quality import board_size_error
from posestudio.core.rig import CameraRig

__all__ = ["align_rig_to_truth", "match_cameras", "score_against_truth", "score_rig"]


def score_rig(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec,
              truth: CameraRig | None = None, time_aligned: bool = False) -> dict:
    """Every score of one rig: ``{"board": board_size_error(...), "truth": score_against_truth(...)}``.

    The rig's cameras are matched to the detections by name (else by order).
    """
    order = match_cameras(rig, [d.name for d in detections])
    sub = CameraRig([rig.cameras[i] for i in order], dict(rig.metadata))
    renamed = [d if d.name == c.name else type(d)(c.name, d.image_size, d.n_frames, d.observations)
               for d, c in zip(detections, sub.cameras)]
    out = {"board": board_size_error(sub, renamed, board, time_aligned=time_aligned)}
    if truth is not None:
        out["truth"] = score_against_truth(rig, truth)
    return out
