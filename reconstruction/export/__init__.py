"""A reconstruction's 3D points as files other tools open: BVH, TRC, C3D, CSV, JSON.

``posestudio export`` (``posestudio/commands/export.py``) is the command line; the formats are
described in ``docs/export_formats.md``. :func:`read_take` reads and checks a ``posestudio
reconstruct`` output, :func:`export_take` writes any set of formats all or nothing, and each format
has its own atomic writer (:func:`write_trc`, :func:`write_c3d`, :func:`write_csv`,
:func:`write_json`).
"""

from __future__ import annotations

from .c3d_file import write_c3d
from .tables import write_csv, write_json
from .take import ExportTake, check_take, read_take, resample, to_up_axis
from .trc import write_trc
from .writers import FORMATS, ExportFormat, Written, export_take

__all__ = ["FORMATS", "ExportFormat", "ExportTake", "Written", "check_take", "export_take", "read_take", "resample",
           "to_up_axis", "write_c3d", "write_csv", "write_json", "write_trc"]
