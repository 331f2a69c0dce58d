"""Errors the calibration package raises for bad user input or data that cannot be calibrated.

Each carries a message meant for the user: it names the file, camera, field or value and what
was expected. They are :class:`~posestudio.core.errors.PoseStudioError` subclasses, so the command
line prints them without a traceback and exits with status 2. Rig files' own error,
:class:`~posestudio.core.rig_file.RigFileError`, lives with the rig file.
"""

from posestudio.core.errors import InputError, PoseStudioError


class CalibrationInputError(InputError):
    """Bad input to calibration (files, boards, frames, cameras)."""


class BoardError(CalibrationInputError):
    """A board description that is invalid, or a board that cannot be found in images."""


class CalibrationFailure(PoseStudioError, ValueError):
    """The data do not support a calibration (too few views, unconnected cameras...)."""
