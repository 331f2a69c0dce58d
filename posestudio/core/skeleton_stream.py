"""The skeleton stream: live 3D skeletons as msgpack over ZeroMQ PUB/SUB (schema ``posestudio.skeleton``, version 1).

This module is the one definition of the message; the publisher (``reconstruction/stream_publisher.py``,
used by the live server and ``posestudio publish``) and the subscriber (``viewer/stream_client.py``)
both encode and decode through it. ``docs/skeleton_stream.md`` describes the same schema for readers
in other languages.

Each message is a ZeroMQ multipart message of two parts, ``[topic, payload]``:

- ``topic``: ``b"skeleton"`` (a SUB socket subscribes to it by prefix);
- ``payload``: one msgpack map (strings as msgpack str, bytes as msgpack bin)::

    schema       str      "posestudio.skeleton"
    version      int      1 (the major version; see below)
    sequence     int      the publisher's counter, +1 per frame, from 0; a gap means frames were lost
    timestamp_s  float    studio clock, seconds (finite)
    frame_index  int|nil  the take's frame index, when the frames come from one (>= 0)
    source       str      who made the frame (free text, may be empty)
    joint_names  [str]    J unique names, the order of the joint axis
    points       array    float32 (P, J, 3): metres, world frame, Z up; NaN where unknown
    confidence   array    float32 (P, J): in [0, 1] (0 where unknown)
    person_ids   array    int64 (P,): stable track ids, unique within a frame

  where each ``array`` is a map ``{"dtype": str, "shape": [int, ...], "data": bin}``: ``dtype`` is the
  NumPy type string (``"<f4"`` little-endian float32, ``"<i8"`` little-endian int64), ``data`` the
  array's elements in C (row-major) order, ``prod(shape) * itemsize`` bytes. P may be 0 (nobody in
  view).

Versioning: ``version`` is a major version. Adding an optional field keeps it (readers ignore keys
they do not know); removing a field, or changing a field's meaning, type or unit, raises it. A reader
refuses a message whose version differs from the one it reads (:data:`VERSION`), naming both.

:func:`decode_frame` raises :class:`StreamMessageError` (an :class:`~posestudio.core.errors.InputError`)
with a one-line message naming the field and what was expected for every malformed message; it never
raises anything else on any input, so a subscriber can count and skip bad messages. A
:class:`SkeletonFrame` checks the same rules when it is built, so :func:`encode_frame` never sends a
message that :func:`decode_frame` would refuse.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .wire import check_schema_version, is_int, show_value, unpack_map

#: The ZeroMQ topic (first message part) of every skeleton message.
TOPIC = b"skeleton"
#: The ``schema`` field's value.
SCHEMA = "posestudio.skeleton"
#: The major version this module writes and reads.
VERSION = 1
#: ``SkeletonFrame.sequence`` of a frame not numbered yet; the publisher gives it the next number.
UNSEQUENCED = -1

_MAX_UINT64 = 2**64 - 1
_FLOAT32 = "<f4"
_INT64 = "<i8"


class StreamMessageError(InputError):
    """A skeleton-stream message (or frame) that breaks the schema; the message names the field and what was expected."""


def _fail(what: str) -> StreamMessageError:
    return StreamMessageError(f"skeleton stream: {what}")


@dataclass(frozen=True, eq=False)
class SkeletonFrame:
    """The skeletons of everyone in view at one instant (one message of the skeleton stream).

    Attributes:
        sequence: the publisher's counter (+1 per frame, from 0), for loss detection;
            :data:`UNSEQUENCED` (-1) asks the publisher to number the frame.
        timestamp_s: studio clock, seconds (finite).
        joint_names: the J joint names, in the order of the joint axis (unique).
        points: float32 ``(P, J, 3)``, metres, world frame, Z up; NaN where unknown.
        confidence: float32 ``(P, J)`` in [0, 1].
        person_ids: int64 ``(P,)``, stable track ids, unique.
        frame_index: the take's frame index (>= 0), when the frame comes from one.
        source: who made the frame (free text).

    Arrays are converted to the schema's dtypes on construction (float64 points become float32),
    and every rule of the schema is checked: a :class:`StreamMessageError` names the field.
    """

    sequence: int
    timestamp_s: float
    joint_names: tuple[str, ...]
    points: NDArray[np.float32]
    confidence: NDArray[np.float32]
    person_ids: NDArray[np.int64]
    frame_index: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not is_int(self.sequence) or not UNSEQUENCED <= int(self.sequence) <= _MAX_UINT64:
            raise _fail(f"field 'sequence' is {show_value(self.sequence)}; expected an integer from 0 to 2**64-1")
        object.__setattr__(self, "sequence", int(self.sequence))
        t = self.timestamp_s
        if not isinstance(t, (int, float, np.integer, np.floating)) or isinstance(t, (bool, np.bool_)):
            raise _fail(f"field 'timestamp_s' is {show_value(t)}; expected a number of seconds")
        try:
            seconds = float(t)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise _fail(f"field 'timestamp_s' is {seconds}; expected a finite number of seconds")
        object.__setattr__(self, "timestamp_s", seconds)
        names = self.joint_names
        if isinstance(names, np.ndarray):
            names = names.tolist()
        if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) \
                or not all(isinstance(n, str) for n in names):
            raise _fail(f"field 'joint_names' is {type(names).__name__}; expected a list of strings")
        names = tuple(str(n) for n in names)
        if len(set(names)) != len(names):
            twice = sorted(n for n, k in Counter(names).items() if k > 1)
            raise _fail(f"field 'joint_names' names {show_value(twice)} more than once; expected unique names")
        object.__setattr__(self, "joint_names", names)
        points = _numeric(self.points, "points", np.float32)
        confidence = _numeric(self.confidence, "confidence", np.float32)
        ids = _numeric(self.person_ids, "person_ids", np.int64)
        if points.ndim != 3 or points.shape[2] != 3:
            raise _fail(f"field 'points' has shape {points.shape}; expected (people, joints, 3)")
        p, j = points.shape[:2]
        if j != len(names):
            raise _fail(f"field 'points' has {j} joints but 'joint_names' names {len(names)}; expected the same J")
        if confidence.shape != (p, j):
            raise _fail(f"field 'confidence' has shape {confidence.shape}; expected (people, joints) = ({p}, {j}) "
                        "as in 'points'")
        if ids.shape != (p,):
            raise _fail(f"field 'person_ids' has shape {ids.shape}; expected (people,) = ({p},) as in 'points'")
        if np.isinf(points).any():
            raise _fail("field 'points' holds infinite values; expected metres, or NaN where unknown")
        if confidence.size and not ((confidence >= 0) & (confidence <= 1)).all():
            bad = confidence[~((confidence >= 0) & (confidence <= 1))]
            raise _fail(f"field 'confidence' holds {bad.size} values outside [0, 1] (e.g. {bad.flat[0]:g}); "
                        "expected confidences in [0, 1]")
        if np.unique(ids).size != ids.size:
            raise _fail(f"field 'person_ids' holds a track id more than once ({show_value(ids.tolist())}); expected unique ids")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "person_ids", ids)
        if self.frame_index is not None:
            if not is_int(self.frame_index) or not 0 <= int(self.frame_index) <= _MAX_UINT64:
                raise _fail(f"field 'frame_index' is {show_value(self.frame_index)}; expected a non-negative integer or nil")
            object.__setattr__(self, "frame_index", int(self.frame_index))
        if not isinstance(self.source, str):
            raise _fail(f"field 'source' is {type(self.source).__name__}; expected a string")

    @property
    def n_people(self) -> int:
        """P, the number of people in the frame."""
        return int(self.points.shape[0])


def _numeric(value: Any, field: str, dtype: type) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype``; integers only for an integer field."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise _fail(f"field '{field}' is not an array ({exc}); expected {np.dtype(dtype).name}") from None
    allowed = "iu" if np.dtype(dtype).kind in "iu" else "iuf"
    if a.dtype.kind not in allowed:
        raise _fail(f"field '{field}' has dtype {a.dtype}; expected {np.dtype(dtype).name}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(a, dtype=dtype)


def _array_doc(a: np.ndarray, dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(a.shape), "data": a.astype(dtype, copy=False).tobytes()}


def encode_frame(frame: SkeletonFrame, topic: bytes = TOPIC) -> list[bytes]:
    """The two message parts ``[topic, payload]`` of ``frame`` (see the module docstring).

    Raises:
        StreamMessageError: ``frame.sequence`` is :data:`UNSEQUENCED` (a publisher numbers frames).
    """
    if frame.sequence < 0:
        raise _fail("field 'sequence' is unset (-1); expected the publisher's counter, 0 or more")
    doc = {
        "schema": SCHEMA,
        "version": VERSION,
        "sequence": frame.sequence,
        "timestamp_s": frame.timestamp_s,
        "frame_index": frame.frame_index,
        "source": frame.source,
        "joint_names": list(frame.joint_names),
        "points": _array_doc(frame.points, _FLOAT32),
        "confidence": _array_doc(frame.confidence, _FLOAT32),
        "person_ids": _array_doc(frame.person_ids, _INT64),
    }
    return [bytes(topic), msgpack.packb(doc, use_bin_type=True)]


def _field(doc: dict, name: str, what: str) -> Any:
    if name not in doc:
        raise _fail(f"missing field '{name}'; expected {what}")
    return doc[name]


def _array(doc: dict, name: str, dtype: str, shape_words: str, ndim: int) -> np.ndarray:
    """The array field ``name`` (``{"dtype", "shape", "data"}``) checked against the schema."""
    expected = f"{{dtype: {dtype!r}, shape: {shape_words}, data: bytes}}"
    value = _field(doc, name, f"an array {expected}")
    if not isinstance(value, dict):
        raise _fail(f"field '{name}' is {type(value).__name__}; expected a map {expected}")
    for key in ("dtype", "shape", "data"):
        if key not in value:
            raise _fail(f"field '{name}' lacks '{key}'; expected a map {expected}")
    if value["dtype"] != dtype:
        raise _fail(f"field '{name}' has dtype {show_value(value['dtype'])}; expected {dtype!r}")
    shape = value["shape"]
    if not isinstance(shape, list) or len(shape) != ndim or not all(is_int(s) and 0 <= s < 2**31 for s in shape):
        raise _fail(f"field '{name}' has shape {show_value(shape)}; expected {shape_words}, {ndim} non-negative integers")
    data = value["data"]
    if not isinstance(data, bytes):
        raise _fail(f"field '{name}' data is {type(data).__name__}; expected bytes (msgpack bin)")
    itemsize = np.dtype(dtype).itemsize
    n = math.prod(shape)
    if len(data) != n * itemsize:
        dims = "*".join(str(s) for s in shape)
        raise _fail(f"field '{name}' data has {len(data)} bytes; expected {dims} {np.dtype(dtype).name} = "
                    f"{n * itemsize} bytes for shape {shape}")
    native = np.float32 if dtype == _FLOAT32 else np.int64
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(native)   # a writable copy, native byte order


def decode_frame(parts: Sequence[bytes], topic: bytes | None = TOPIC) -> SkeletonFrame:
    """The :class:`SkeletonFrame` in a received multipart message ``[topic, payload]``.

    Args:
        parts: the message parts (``bytes``, or ``zmq.Frame``-like objects with ``.bytes``).
        topic: the topic part expected exactly; None accepts any (a SUB socket has filtered by prefix).

    Raises:
        StreamMessageError: anything that breaks the schema, with a one-line message naming the field
            and what was expected. Nothing else is raised, whatever the input.
    """
    if isinstance(parts, (bytes, bytearray, str)) or not isinstance(parts, Sequence):
        raise _fail(f"a message is {type(parts).__name__}; expected 2 parts [topic, payload]")
    if len(parts) != 2:
        raise _fail(f"a message has {len(parts)} parts; expected 2 [topic, payload]")
    head, payload = (getattr(p, "bytes", p) for p in parts)
    if not isinstance(head, (bytes, bytearray)) or not isinstance(payload, (bytes, bytearray)):
        raise _fail("message parts are not bytes; expected 2 byte strings [topic, payload]")
    if topic is not None and bytes(head) != topic:
        raise _fail(f"topic is {bytes(head)[:40]!r}; expected {topic!r}")
    doc = unpack_map(bytes(payload), "payload", SCHEMA, _fail)
    check_schema_version(doc, SCHEMA, VERSION, _fail)
    sequence = _field(doc, "sequence", "an integer from 0 to 2**64-1")
    if not is_int(sequence) or sequence < 0:
        raise _fail(f"field 'sequence' is {show_value(sequence)}; expected an integer from 0 to 2**64-1")
    timestamp = _field(doc, "timestamp_s", "a finite number of seconds")
    joint_names = _field(doc, "joint_names", "a list of strings")
    if not isinstance(joint_names, list) or not all(isinstance(n, str) for n in joint_names):
        raise _fail(f"field 'joint_names' is {type(joint_names).__name__}; expected a list of strings")
    points = _array(doc, "points", _FLOAT32, "[people, joints, 3]", 3)
    confidence = _array(doc, "confidence", _FLOAT32, "[people, joints]", 2)
    person_ids = _array(doc, "person_ids", _INT64, "[people]", 1)
    return SkeletonFrame(sequence=sequence, timestamp_s=timestamp, joint_names=tuple(joint_names), points=points,
                         confidence=confidence, person_ids=person_ids, frame_index=doc.get("frame_index"),
                         source=doc.get("source", ""))
