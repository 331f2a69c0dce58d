"""The error every package raises for a problem the user can act on.

:class:`PoseStudioError` and its subclasses carry a message that names the file, field or value
and what was expected; the command line prints that one line (exit status 2). Any other exception
is a bug: the command line keeps its traceback and asks for a report.
"""

from __future__ import annotations


class PoseStudioError(Exception):
    """A problem with the user's input, files or setup; the message says what and where."""


class InputError(PoseStudioError, ValueError):
    """An input (file, field, option value) that cannot be used; the message names it and what was expected."""
