"""BVH (Biovision Hierarchy) motion files: read, write, forward kinematics.

A BVH file has a ``HIERARCHY`` section (a tree of joints, each with an ``OFFSET`` from its parent
and a ``CHANNELS`` list, leaves ending in ``End Site`` blocks) and a ``MOTION`` section
(``Frames: F``, ``Frame Time: dt`` in seconds, then F lines of channel values, joints in file
order, each joint's channels in the order its ``CHANNELS`` line lists them).

Conventions used here (checked against the Bandai Namco Research Motion Dataset 1 and against
hand-written files in ``tests/reconstruction/test_bvh.py``):

* Rotation channels are degrees. A joint whose channels list rotations ``A1 A2 A3`` (e.g.
  ``Zrotation Xrotation Yrotation``) has the local rotation ``R = R_A1 @ R_A2 @ R_A3`` (each a
  right-handed rotation about the parent-aligned axis), which maps vectors from the joint's frame to
  its parent's frame. So a child's offset ``o`` lands at ``p_joint + R_global(joint) @ o`` with
  ``R_global(joint) = R_global(parent) @ R``.
* Position channels, when a joint has them, are the joint's local translation in its parent's frame
  and **replace** the ``OFFSET`` (component by component, for the axes that have a channel).
  Bandai files give every joint six channels: on ``joint_Root`` they carry the root motion of the
  looping clips (zeros otherwise), on ``Hips`` the pelvis trajectory (its OFFSET, e.g. z = -452 cm,
  is a stale capture position that must not be added), and on every other joint they repeat the
  OFFSET (equal within 1e-5 cm in all 75 clips), so bones stay rigid.
* ``End Site`` offsets are kept (``end_site_parents``, ``end_site_offsets``) and written back;
  ``world_positions(include_end_sites=True)`` appends their positions.
* Lengths in the file have no unit in the format; ``length_unit_m`` (0.01 for centimetre files such
  as Bandai's) converts them. Files are Y-up; the studio world is Z-up, right-handed, so
  :meth:`BvhMotion.world_positions` returns ``(x, y, z)_zup = (x, -z, y)_yup`` times
  ``length_unit_m``: metres, Z up (a +90 degree rotation about X, determinant +1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .arrays import FloatArray
from .errors import InputError
from .rotations import axis_rotation

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_CANONICAL = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}

#: Y-up file axes -> Z-up studio axes: (x, y, z) -> (x, -z, y). Right-handed (det = +1).
Y_UP_TO_Z_UP: FloatArray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


class BvhFormatError(InputError):
    """A BVH file that cannot be read: names the file, the line and what was expected."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass(frozen=True, eq=False)
class BvhMotion:
    """A skeleton and its motion, as stored in a BVH file (file units and axes).

    Attributes:
        names: ``J`` joint names in file (depth-first) order; parents come before children.
        parents: ``J`` parent indices, -1 for a root.
        offsets: ``(J, 3)`` joint offsets from the parent, file length units, file axes.
        channels: per joint, its channel names (canonical spelling, e.g. ``"Zrotation"``).
        frame_time: seconds per frame.
        motion: ``(F, C)`` channel values, ``C = sum(len(ch) for ch in channels)``; positions in
            file length units, rotations in degrees.
        end_site_parents: ``E`` indices of the joints that own an End Site.
        end_site_offsets: ``(E, 3)`` End Site offsets, file length units.
        length_unit_m: metres per file length unit (0.01 for centimetres).
        up_axis: the file's up axis, ``"y"`` (usual BVH) or ``"z"``.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: FloatArray
    channels: tuple[tuple[str, ...], ...]
    frame_time: float
    motion: FloatArray
    end_site_parents: tuple[int, ...] = ()
    end_site_offsets: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    length_unit_m: float = 0.01
    up_axis: str = "y"

    def __post_init__(self) -> None:
        for name in ("offsets", "motion", "end_site_offsets"):  # accept lists; store float64 arrays
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        object.__setattr__(self, "end_site_offsets", self.end_site_offsets.reshape(-1, 3))
        n = len(self.names)
        if len(self.parents) != n or len(self.channels) != n or np.shape(self.offsets) != (n, 3):
            raise ValueError(f"BvhMotion: names ({n}), parents ({len(self.parents)}), channels "
                             f"({len(self.channels)}) and offsets {np.shape(self.offsets)} disagree")
        for j, p in enumerate(self.parents):
            if not -1 <= p < j:
                raise ValueError(f"BvhMotion: joint {self.names[j]!r} has parent {p}; parents must come first")
        n_ch = sum(len(c) for c in self.channels)
        if self.motion.ndim != 2 or self.motion.shape[1] != n_ch:
            raise ValueError(f"BvhMotion: motion has shape {self.motion.shape}, expected (frames, {n_ch})")
        if len(self.end_site_parents) != len(self.end_site_offsets) or any(
                not 0 <= p < n for p in self.end_site_parents):
            raise ValueError(f"BvhMotion: {len(self.end_site_parents)} End Site parents (joint indices < {n}) "
                             f"for {len(self.end_site_offsets)} End Site offsets")
        if self.up_axis not in ("y", "z"):
            raise ValueError(f"BvhMotion: up_axis must be 'y' or 'z', not {self.up_axis!r}")

    # ----------------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames F."""
        return int(self.motion.shape[0])

    @property
    def n_joints(self) -> int:
        """Number of joints J (End Sites not counted)."""
        return len(self.names)

    @property
    def fps(self) -> float:
        """Frames per second (1 / frame_time)."""
        return 1.0 / self.frame_time

    @property
    def channel_starts(self) -> NDArray[np.int64]:
        """``(J,)`` column of each joint's first channel in :attr:`motion`."""
        counts = np.array([len(c) for c in self.channels], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def index(self, name: str) -> int:
        """Index of joint ``name``; KeyError listing the joints if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r} in this BVH skeleton; joints: {', '.join(self.names)}") from None

    def channel_column(self, joint: str, channel: str) -> int:
        """Column in :attr:`motion` of ``channel`` (e.g. ``"Xrotation"``) of ``joint``."""
        j = self.index(joint)
        ch = _CANONICAL.get(channel.lower(), channel)
        if ch not in self.channels[j]:
            raise KeyError(f"joint {joint!r} has no channel {channel!r}; it has {self.channels[j]}")
        return int(self.channel_starts[j]) + self.channels[j].index(ch)

    # ----------------------------------------------------------------------------------------
    def local_transforms(self, frames: slice | NDArray[np.int64] | None = None) -> tuple[FloatArray, FloatArray]:
        """Local rotations and translations of every joint, vectorised over frames.

        Args:
            frames: which frames (default all).
        Returns:
            ``(F, J, 3, 3)`` rotations joint-to-parent and ``(F, J, 3)`` translations (file units,
            parent's frame): the OFFSET, with components replaced by position channels if any.
        """
        data = self.motion if frames is None else self.motion[frames]
        n_f = data.shape[0]
        rot = np.broadcast_to(np.eye(3), (n_f, self.n_joints, 3, 3)).copy()
        trans = np.broadcast_to(np.asarray(self.offsets, float), (n_f, self.n_joints, 3)).copy()
        for j, (start, chans) in enumerate(zip(self.channel_starts, self.channels)):
            r = None
            for k, ch in enumerate(chans):
                values = data[:, start + k]
                axis = "XYZ".index(ch[0])
                if ch.endswith("position"):
                    trans[:, j, axis] = values
                else:
                    m = axis_rotation(axis, np.deg2rad(values))
                    r = m if r is None else r @ m
            if r is not None:
                rot[:, j] = r
        return rot, trans

    def global_transforms(self, frames: slice | NDArray[np.int64] | None = None) -> tuple[FloatArray, FloatArray]:
        """Forward kinematics in file units and file axes.

        Returns:
            ``(F, J, 3, 3)`` joint-to-world rotations and ``(F, J, 3)`` joint positions (file
            length units, file axes). Loops over joints in hierarchy order, never over frames.
        """
        rot_l, trans_l = self.local_transforms(frames)
        rot_g = np.empty_like(rot_l)
        pos_g = np.empty_like(trans_l)
        for j, p in enumerate(self.parents):
            if p < 0:
                rot_g[:, j] = rot_l[:, j]
                pos_g[:, j] = trans_l[:, j]
            else:
                rot_g[:, j] = rot_g[:, p] @ rot_l[:, j]
                pos_g[:, j] = pos_g[:, p] + np.einsum("fab,fb->fa", rot_g[:, p], trans_l[:, j])
        return rot_g, pos_g

    @property
    def to_world(self) -> FloatArray:
        """``(3, 3)`` matrix taking file-axis vectors to studio axes (Z up), without the unit scale."""
        return Y_UP_TO_Z_UP if self.up_axis == "y" else np.eye(3)

    def world_transforms(self, frames: slice | NDArray[np.int64] | None = None) -> tuple[FloatArray, FloatArray]:
        """Forward kinematics in the studio world: metres, Z up, right-handed.

        Returns:
            ``(F, J, 3, 3)`` rotations taking a joint's local (file-unit-free) axes to world axes and
            ``(F, J, 3)`` joint positions in metres. A point ``o`` given in a joint's local frame in
            file units is at ``pos + length_unit_m * rot @ o``.
        """
        rot_g, pos_g = self.global_transforms(frames)
        m = self.to_world
        return np.einsum("ab,fjbc->fjac", m, rot_g), self.length_unit_m * pos_g @ m.T

    def world_positions(self, frames: slice | NDArray[np.int64] | None = None,
                        include_end_sites: bool = False) -> FloatArray:
        """Joint positions in the studio world.

        Args:
            frames: which frames (default all).
            include_end_sites: append the E End Site positions after the J joints.
        Returns:
            ``(F, J, 3)`` (or ``(F, J + E, 3)``) positions in metres, Z up.
        """
        rot, pos = self.world_transforms(frames)
        if not include_end_sites or not self.end_site_parents:
            return pos
        par = np.asarray(self.end_site_parents)
        ends = pos[:, par] + self.length_unit_m * np.einsum("feab,eb->fea", rot[:, par],
                                                            np.asarray(self.end_site_offsets, float))
        return np.concatenate([pos, ends], axis=1)

    def with_motion(self, motion: FloatArray) -> BvhMotion:
        """A copy with other channel values (same skeleton)."""
        return replace(self, motion=np.asarray(motion, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Reading


class _Tokens:
    """Whitespace-separated tokens of the HIERARCHY section with their line numbers."""

    def __init__(self, path: str, lines: list[str], start: int, stop: int) -> None:
        self.path = path
        self.items: list[tuple[str, int]] = []
        for i in range(start, stop):
            for tok in lines[i].split():
                self.items.append((tok, i + 1))
        self.pos = 0
        self.last_line = stop

    def peek(self) -> tuple[str | None, int]:
        if self.pos < len(self.items):
            return self.items[self.pos]
        return None, self.last_line

    def next(self, expected: str) -> tuple[str, int]:
        tok, line = self.peek()
        if tok is None:
            raise BvhFormatError(self.path, line, f"expected {expected}, found the end of the HIERARCHY section")
        self.pos += 1
        return tok, line

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word and tok.upper() != word.upper():
            raise BvhFormatError(self.path, line, f"expected {word!r}, found {tok!r}")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise BvhFormatError(self.path, line, f"expected {what} (a number), found {tok!r}") from None


def read_bvh(path: str | os.PathLike[str], length_unit_m: float = 0.01, up_axis: str = "y") -> BvhMotion:
    """Read a BVH file.

    Args:
        path: the file.
        length_unit_m: metres per file length unit (BVH has no unit field; 0.01 = centimetres,
            as in the Bandai dataset and most motion-capture exports).
        up_axis: the file's up axis, ``"y"`` (the BVH norm) or ``"z"``.
    Returns:
        The :class:`BvhMotion` (file units; use :meth:`BvhMotion.world_positions` for metres, Z up).
    Raises:
        BvhFormatError: (a ValueError) naming the file, line and what was expected.
        FileNotFoundError: if the file does not exist.
    """
    path_s = str(path)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    motion_line = next((i for i, ln in enumerate(lines) if ln.strip().upper() == "MOTION"), None)
    if motion_line is None:
        raise BvhFormatError(path_s, None, "expected a 'MOTION' line after the HIERARCHY section; none found")
    toks = _Tokens(path_s, lines, 0, motion_line)
    toks.expect("HIERARCHY")

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_parents: list[int] = []
    end_offsets: list[list[float]] = []

    def offset() -> list[float]:
        toks.expect("OFFSET")
        return [toks.number("an OFFSET x value"), toks.number("an OFFSET y value"), toks.number("an OFFSET z value")]

    def joint(parent: int) -> None:
        name, line = toks.next("a joint name")
        if name in ("{", "}"):
            raise BvhFormatError(path_s, line, f"expected a joint name, found {name!r}")
        if name in names:
            raise BvhFormatError(path_s, line, f"joint name {name!r} appears twice")
        toks.expect("{")
        index = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(offset())
        tok, line = toks.peek()
        chans: tuple[str, ...] = ()
        if tok is not None and tok.upper() == "CHANNELS":
            toks.next("CHANNELS")
            n_tok, n_line = toks.next("the channel count")
            if not n_tok.isdigit():
                raise BvhFormatError(path_s, n_line, f"expected the channel count (an integer), found {n_tok!r}")
            got = []
            for _ in range(int(n_tok)):
                c, c_line = toks.next("a channel name")
                canon = _CANONICAL.get(c.lower())
                if canon is None:
                    raise BvhFormatError(path_s, c_line, f"expected a channel name (X|Y|Z)(position|rotation), "
                                                         f"found {c!r}")
                if canon in got:
                    raise BvhFormatError(path_s, c_line, f"channel {canon} listed twice for joint {name!r}")
                got.append(canon)
            chans = tuple(got)
        channels.append(chans)
        while True:
            tok, line = toks.next("'JOINT', 'End Site' or '}'")
            up = tok.upper()
            if up == "}":
                return
            if up == "JOINT":
                joint(index)
            elif up == "END":
                toks.expect("Site")
                toks.expect("{")
                end_parents.append(index)
                end_offsets.append(offset())
                toks.expect("}")
            else:
                raise BvhFormatError(path_s, line, f"expected 'JOINT', 'End Site' or '}}' in joint {name!r}, "
                                                   f"found {tok!r}")

    while True:
        tok, line = toks.peek()
        if tok is None:
            break
        toks.expect("ROOT")
        joint(-1)
    if not names:
        raise BvhFormatError(path_s, motion_line + 1, "expected a 'ROOT' joint before MOTION")

    motion = _read_motion(path_s, lines, motion_line, sum(len(c) for c in channels))
    frames, frame_time = motion
    return BvhMotion(names=tuple(names), parents=tuple(parents), offsets=np.array(offsets, dtype=np.float64),
                     channels=tuple(channels), frame_time=frame_time, motion=frames,
                     end_site_parents=tuple(end_parents),
                     end_site_offsets=np.array(end_offsets, dtype=np.float64).reshape(-1, 3),
                     length_unit_m=length_unit_m, up_axis=up_axis)


def _read_motion(path: str, lines: list[str], motion_line: int, n_channels: int) -> tuple[FloatArray, float]:
    """Parse ``Frames:``, ``Frame Time:`` and the frame lines after the MOTION line (0-based index)."""
    i = motion_line + 1
    header: dict[str, tuple[str, int]] = {}
    for key, what in (("frames:", "'Frames: <count>'"), ("frame time:", "'Frame Time: <seconds>'")):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            raise BvhFormatError(path, i, f"expected {what}, found the end of the file")
        s = lines[i].strip()
        if not s.lower().startswith(key):
            raise BvhFormatError(path, i + 1, f"expected {what}, found {s[:40]!r}")
        header[key] = (s[len(key):].strip(), i + 1)
        i += 1
    n_tok, n_line = header["frames:"]
    if not n_tok.isdigit():
        raise BvhFormatError(path, n_line, f"expected the frame count (an integer), found {n_tok!r}")
    n_frames = int(n_tok)
    t_tok, t_line = header["frame time:"]
    try:
        frame_time = float(t_tok)
    except ValueError:
        raise BvhFormatError(path, t_line, f"expected the frame time in seconds, found {t_tok!r}") from None
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise BvhFormatError(path, t_line, f"expected a positive frame time, found {t_tok!r}")

    rows = [(k + 1, ln.split()) for k, ln in enumerate(lines[i:], start=i) if ln.strip()]
    if len(rows) != n_frames:
        where = rows[n_frames][0] if len(rows) > n_frames else len(lines)
        raise BvhFormatError(path, where, f"expected {n_frames} frame lines (from 'Frames:' on line {n_line}), "
                                          f"found {len(rows)}")
    for line_no, vals in rows:
        if len(vals) != n_channels:
            raise BvhFormatError(path, line_no, f"expected {n_channels} channel values on a frame line "
                                                f"(the HIERARCHY's channel count), found {len(vals)}")
    try:
        data = np.array([v for _, v in rows], dtype=np.float64).reshape(n_frames, n_channels)
    except ValueError:
        for line_no, vals in rows:
            for v in vals:
                try:
                    float(v)
                except ValueError:
                    raise BvhFormatError(path, line_no, f"expected a number, found {v!r}") from None
        raise
    if not np.isfinite(data).all():
        bad = int(np.argwhere(~np.isfinite(data))[0, 0])
        raise BvhFormatError(path, rows[bad][0], "expected finite channel values, found NaN or infinity")
    return data, frame_time


# ---------------------------------------------------------------------------------------------
# Writing


def _fmt(values: FloatArray) -> str:
    """Space-separated shortest round-trip representations (exact for float64)."""
    return " ".join(repr(float(v)) for v in np.asarray(values).ravel())


def write_bvh(path: str | os.PathLike[str], motion: BvhMotion) -> None:
    """Write ``motion`` as a BVH file (file units and axes as stored in ``motion``).

    Numbers are written with Python's shortest round-trip representation, so reading the file back
    gives bit-identical offsets and channel values.

    Raises:
        InputError: if the motion holds NaN or infinite values (BVH cannot represent them).
    """
    if not np.isfinite(motion.motion).all() or not np.isfinite(motion.offsets).all():
        raise InputError(f"{path}: cannot write a BVH with NaN or infinite values")
    children: dict[int, list[int]] = {j: [] for j in range(-1, motion.n_joints)}
    for j, p in enumerate(motion.parents):
        children[p].append(j)
    ends: dict[int, list[int]] = {}
    for e, p in enumerate(motion.end_site_parents):
        ends.setdefault(p, []).append(e)
    out: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if motion.parents[j] < 0 else 'JOINT'} {motion.names[j]}")
        out.append(pad + "{")
        out.append(f"{pad}  OFFSET {_fmt(motion.offsets[j])}")
        if motion.channels[j]:
            out.append(f"{pad}  CHANNELS {len(motion.channels[j])} {' '.join(motion.channels[j])}")
        for c in children[j]:
            emit(c, depth + 1)
        for e in ends.get(j, []):
            out.append(f"{pad}  End Site")
            out.append(f"{pad}  {{")
            out.append(f"{pad}    OFFSET {_fmt(motion.end_site_offsets[e])}")
            out.append(f"{pad}  }}")
        out.append(pad + "}")

    for r in children[-1]:
        emit(r, 0)
    # The file lists joints depth-first; frame columns must follow that order (a BvhMotion built in
    # another parents-first order is re-read in depth-first order).
    order: list[int] = []
    stack = list(reversed(children[-1]))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    starts = motion.channel_starts
    columns = np.concatenate([np.arange(starts[j], starts[j] + len(motion.channels[j])) for j in order]
                             ).astype(np.int64)
    out.append("MOTION")
    out.append(f"Frames: {motion.n_frames}")
    out.append(f"Frame Time: {motion.frame_time!r}")
    out.extend(_fmt(row) for row in motion.motion[:, columns])
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
