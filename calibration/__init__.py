"""PoseStudio calibration: camera model, rigs, boards, detection, rig calibration, rig files.

The small surface most users need::

    from posestudio.calibration import CameraRig, load_board, calibrate_rig

    board = load_board("board.toml")
    result = calibrate_rig(["cam1.mp4", "cam2.mp4", "cam3.mp4"], board)
    result.rig.save("rig.toml")
    print(result.report.board_size_error.mean_abs_mm)   # the typed CalibrationReport, mm
    rig = CameraRig.load("rig.toml")
    points = rig.triangulate(pixels)        # (C, ..., 2) pixels -> (..., 3) metres
"""

from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError

from .board import BoardSpec, load_board
from .calibrate import CalibrationOptions, CalibrationResult, calibrate_from_detections, calibrate_rig
from .errors import BoardError, CalibrationFailure, CalibrationInputError
from .report import CalibrationReport, write_report_json

__all__ = [
    "BoardError", "BoardSpec", "Camera", "CameraRig", "CalibrationFailure", "CalibrationInputError",
    "CalibrationOptions", "CalibrationReport", "CalibrationResult", "RigFileError", "calibrate_from_detections",
    "calibrate_rig", "load_board", "write_report_json",
]
