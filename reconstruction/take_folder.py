"""Where a ``posestudio reconstruct`` output folder keeps its takes: the subject and each person.

``DIR/points3d.npz`` is the subject; with ``--all-people``, ``DIR/people/person_K/points3d.npz`` is
person ``K`` (a whole number). :func:`take_file` resolves a person to that file, refusing a missing
folder, person or file with one message each; :func:`people` lists the persons there. The readers
(``posestudio export``, ``posestudio view``) share it; the file's contents are checked by
:func:`posestudio.core.keypoints_file.read_points3d`.
"""

from __future__ import annotations

from pathlib import Path

from posestudio.core.errors import InputError

#: The file of a take, in the output folder and in each person's folder.
POINTS3D_FILE = "points3d.npz"
#: The folder of the other people followed (``reconstruct --all-people``).
PEOPLE_DIR = "people"


def person_folder(folder: str | Path, person: int) -> Path:
    """``folder/people/person_<person>``."""
    return Path(folder) / PEOPLE_DIR / f"person_{int(person)}"


def people(folder: str | Path) -> list[int]:
    """The persons ``K`` with a ``folder/people/person_K/points3d.npz``, ascending (none: ``[]``)."""
    root = Path(folder) / PEOPLE_DIR
    if not root.is_dir():
        return []
    found = (p.name.removeprefix("person_") for p in root.glob("person_*") if (p / POINTS3D_FILE).is_file())
    return sorted(int(k) for k in found if k.isdigit())


def take_file(folder: str | Path, person: int | None = None) -> Path:
    """The ``points3d.npz`` of a ``posestudio reconstruct`` output folder.

    Args:
        folder: the output folder.
        person: ``None`` for the subject (``folder/points3d.npz``), or ``K`` for
            ``folder/people/person_K/points3d.npz`` (written by ``--all-people``).
    Raises:
        InputError: the folder, the person or the file does not exist (naming it, and for a person
            the people there).
    """
    folder = Path(folder)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise InputError(f"{folder}: {problem}; expected a 'posestudio reconstruct' output folder "
                         f"(with {POINTS3D_FILE})")
    if person is None:
        path = folder / POINTS3D_FILE
    else:
        path = person_folder(folder, person) / POINTS3D_FILE
        if not path.parent.is_dir():
            root = folder / PEOPLE_DIR
            known = ", ".join(f"person_{k}" for k in people(folder)) or "none"
            raise InputError(f"{path.parent}: no such person; "
                             + (f"people in {root}: {known}" if root.is_dir() else
                                f"this take has no {PEOPLE_DIR}/ folder (reconstruct --all-people)"))
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected the {POINTS3D_FILE} that 'posestudio reconstruct' writes")
    return path
