"""Blender as a checker and converter: our BVH imported by Blender's own importer, headless.

:func:`blender_joints` runs ``blender -b`` on :mod:`.blender_import` and returns the armature's
joint positions as Blender evaluates them, so a test can compare them with the 3D joints the BVH
was solved from (and an animator knows the file opens as intended). With ``fbx`` it also writes
an FBX through Blender's exporter. Blender is optional: :func:`find_blender` says whether it is
installed (Debian's ``blender`` package; ``make bench`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import PoseStudioError

SCRIPT = Path(__file__).with_name("blender_import.py")


class BlenderError(PoseStudioError):
    """Blender is missing, or it failed on a file (the message quotes its last lines)."""


@dataclass(frozen=True)
class BlenderArmature:
    """An imported armature's animation as Blender evaluates it.

    Attributes:
        names: ``B`` bone names (the BVH joints).
        heads: ``(F, B, 3)`` bone heads (the joints), metres, Blender world (Z up).
        tails: ``(F, B, 3)`` bone tails (a leaf bone's tail is its End Site), metres.
        fps: the scene frame rate Blender set from the file.
    """

    names: tuple[str, ...]
    heads: FloatArray
    tails: FloatArray
    fps: float

    def joint(self, name: str) -> FloatArray:
        """``(F, 3)`` head of bone ``name``."""
        return self.heads[:, self.names.index(name)]


def find_blender() -> str | None:
    """Path of the ``blender`` executable (``$BLENDER`` first), or None."""
    env = os.environ.get("BLENDER")
    return env if env and Path(env).is_file() else shutil.which("blender")


def blender_joints(bvh: str | Path, metres_per_unit: float = 0.01, fbx: str | Path | None = None,
                   timeout_s: float = 600.0) -> BlenderArmature:
    """Import ``bvh`` in headless Blender and evaluate every frame.

    Args:
        bvh: the BVH file; metres_per_unit: its length unit (0.01 for centimetres).
        fbx: also export the animated armature as this FBX file.
    Raises:
        BlenderError: no Blender, or Blender failed (its output's last lines in the message).
    """
    exe = find_blender()
    if exe is None:
        raise BlenderError("Blender is not installed (Debian: apt-get install blender; or set $BLENDER)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "armature.json"
        cmd = [exe, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT), "--", str(Path(bvh).resolve()), str(out),
               repr(float(metres_per_unit))]
        if fbx is not None:
            cmd.append(str(Path(fbx).resolve()))
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if run.returncode != 0 or not out.is_file():
            tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-6:])
            raise BlenderError(f"{bvh}: Blender could not import it (exit {run.returncode}): {tail}")
        data = json.loads(out.read_text(encoding="utf-8"))
        return BlenderArmature(tuple(data["names"]), np.asarray(data["heads"], float), np.asarray(data["tails"], float),
                               float(data["fps"]))
