"""A ``posestudio reconstruct`` output folder as the viewer shows it: its skeletons and its rig.

:func:`load_take` reads the subject, person ``K`` or everyone (the files found by
:mod:`posestudio.reconstruction.take_folder`, each checked by
:func:`posestudio.core.keypoints_file.read_points3d`) into one :class:`~.scene.Take`;
:func:`load_rig` finds the cameras to draw. ``posestudio view`` and ``posestudio demo`` use them.
"""

from __future__ import annotations

from pathlib import Path

from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import read_points3d
from posestudio.core.rig import CameraRig
from posestudio.reconstruction.take_folder import people, take_file
from posestudio.viewer.scene import Take


def load_take(folder: str | Path, person: str | None = None) -> Take:
    """A reconstruct output's skeletons: the subject, person K (``person="K"``) or everyone (``person="all"``).

    Raises:
        InputError: no such folder or person, or a points3d.npz that is missing, malformed, empty,
            all NaN or in no known joint layout, or people whose joints differ (the message names
            the file and field).
    """
    folder = Path(folder)
    if person is None:
        files, labels = [take_file(folder)], ["subject"]
    elif person == "all":
        others = people(folder)
        files = [take_file(folder)] + [take_file(folder, k) for k in others]
        labels = ["subject"] + [f"person_{k}" for k in others]
    else:
        if not person.isdigit():
            raise InputError(f"--person: expected a number K (DIR/people/person_K) or 'all', got {person!r}")
        files, labels = [take_file(folder, int(person))], [f"person_{int(person)}"]
    skeletons, names, fps = [], None, None
    for path in files:
        pts = read_points3d(path)
        if names is not None and [n.lower() for n in pts.joint_names] != [n.lower() for n in names]:
            raise InputError(f"{path}: 'joint_names' differ from {files[0]}'s")
        names, fps = names or pts.joint_names, fps or pts.fps
        skeletons.append((pts.points3d, pts.confidence))
    try:
        return Take.from_people(skeletons, names, fps, labels)
    except ValueError as exc:
        raise InputError(f"{files[0]}: 'joint_names': {exc}") from None


def load_rig(folder: str | Path | None, calibration: str | Path | None) -> CameraRig | None:
    """``calibration`` (any rig format) if given, else ``folder/rig.toml`` if it exists, else None."""
    from posestudio.calibration.rig_formats import import_rig

    if calibration is not None:
        return import_rig(calibration)
    if folder is not None and (Path(folder) / "rig.toml").is_file():
        return CameraRig.load(Path(folder) / "rig.toml")
    return None
