"""Errors the calibration package raises for bad user input.

Each carries a message meant for the user: it names the file, camera, field or value and what
was expected. The command line prints it without a traceback and exits with status 2.
"""


class CalibrationInputError(ValueError):
    """Bad input to calibration (files, boards, frames, cameras)."""


class RigFileError(CalibrationInputError):
    """A rig file that cannot be read or has wrong content."""


class BoardError(CalibrationInputError):
    """A board description that is invalid, or a board that cannot be found in images."""


class CalibrationFailure(CalibrationInputError):
    """The data do not support a calibration (too few views, unconnected cameras...)."""
