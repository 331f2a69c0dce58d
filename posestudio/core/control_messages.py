"""The control channel's messages: capture nodes and the studio server over ROUTER/DEALER (schema
``posestudio.control``, version 1).

This module is the one definition of the messages. The node side (``capture/control.py``'s
``ControlClient``, a DEALER) and the server side (``ControlServer``, a ROUTER) encode and decode
through it; ``docs/live_studio.md`` ("Control channel") describes the same schema for readers in other
languages.

Each message is one ZeroMQ frame (the ROUTER sees it after the peer's identity frame) holding one
msgpack map (strings as msgpack str) of at most :data:`MAX_MESSAGE_BYTES`::

    schema   str   "posestudio.control"
    version  int   1 (the major version; see below)
    type     str   one of the types below; the type's own fields follow in the same map

========================  ==========  ==============================================================
type (direction)          field       meaning
========================  ==========  ==============================================================
register (node→server)    camera      the camera's name, as in the rig (the frame topic's rules)
                          clock_endpoint  where the node's clock responder listens (``tcp://HOST:PORT``;
                                      empty when the node runs none)
                          software_version  the node's PoseStudio version (free text)
                          width, height  capture size, pixels (int, or nil when not known yet)
                          fps         capture rate, frames/s (number, or nil: as the device delivers)
registered (server→node)  camera      the camera the answer is about
                          accepted    bool
                          reason      why not (empty when accepted); ``"unknown node"`` (see
                                      :data:`UNKNOWN_NODE`) asks the node to register again
                          heartbeat_timeout_s  optional: seconds of silence after which the server
                                      forgets the node
heartbeat (node→server)   camera, sequence  the node's heartbeat counter (+1 each, from 0)
                          grabbed, sent, dropped  the node's frame counters since it started
start_recording (s→n)     command_id  the server's command counter (answered by an ack)
                          session     the session's name (at most 256 characters)
                          studio_time_ns  when to start, integer ns of studio time
                          clock_offset_ns  node clock minus studio clock at that time, ns (int, or nil
                                      when the server has no clock model of this node yet)
stop_recording (s→n)      command_id, studio_time_ns, clock_offset_ns  as above, when to stop
configure (s→n)           command_id, camera
                          values      map of setting name (``[a-z][a-z0-9_]*``, at most 64 characters)
                                      to bool / int / float / str (at most 256 characters) / nil, at
                                      most 32 entries
ack (either way)          of          the type acknowledged (heartbeat, start_recording,
                                      stop_recording, configure)
                          command_id  the command's id (a heartbeat's sequence)
                          camera      the node's camera
                          ok          bool; reason: why not (empty when ok)
========================  ==========  ==============================================================

Versioning: ``version`` is a major version. Adding an optional field keeps it (readers ignore keys they
do not know); removing a field, changing a field's meaning, type or unit, or adding a type raises it. A
reader refuses another version, naming both.

:func:`decode_control` raises :class:`ControlMessageError` (an :class:`~posestudio.core.errors.InputError`)
with a one-line message naming the field and what was expected for every malformed message, and never
raises anything else on any input, so a server can count and skip bad messages. Every message class checks
the same rules when it is built, so :func:`encode_control` never sends what :func:`decode_control` refuses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

from .errors import InputError
from .frame_messages import MAX_SESSION, camera_name_problem
from .wire import check_schema_version, is_int, show_value, unpack_map

#: The ``schema`` field's value.
SCHEMA = "posestudio.control"
#: The major version this module writes and reads.
VERSION = 1
#: A message longer than this (bytes) is refused before it is unpacked (a real one is under 1 KiB).
MAX_MESSAGE_BYTES = 4096
#: ``Registered.reason`` of a server that does not know the sender: the node registers again.
UNKNOWN_NODE = "unknown node"
#: Limits of free-text fields, characters.
MAX_TEXT = 256
MAX_VERSION_TEXT = 64
#: Limits of a configure message's values.
MAX_VALUES = 32
MAX_KEY = 64
#: The largest image side, pixels (as the frame message).
MAX_SIDE = 16384

_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_KEY = re.compile(r"[a-z][a-z0-9_]*")


class ControlMessageError(InputError):
    """A control message that breaks the schema; the message names the field and what was expected."""


def _fail(what: str) -> ControlMessageError:
    return ControlMessageError(f"control message: {what}")


# --------------------------------------------------------------------------- field checks
# Each check takes (field name, value) and returns the value in its canonical Python type, or raises.
Check = Callable[[str, Any], Any]


def _integer(lo: int, hi: int, what: str, optional: bool = False) -> Check:
    def check(name: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        if not is_int(value) or not lo <= int(value) <= hi:
            raise _fail(f"field '{name}' is {show_value(value)}; expected {what}{' or nil' if optional else ''}")
        return int(value)
    return check


def _number(lo: float, what: str, optional: bool = False) -> Check:
    def check(name: str, value: Any) -> float | None:
        if value is None and optional:
            return None
        ok = (is_int(value) or isinstance(value, float)) and not isinstance(value, bool)
        try:
            number = float(value) if ok else math.nan
        except OverflowError:
            number = math.inf
        if not (math.isfinite(number) and number >= lo):
            raise _fail(f"field '{name}' is {show_value(value)}; expected {what}{' or nil' if optional else ''}")
        return number
    return check


def _text(limit: int, what: str = "a string") -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit or not value.isprintable():
            shown = f"{len(value)} characters" if isinstance(value, str) and len(value) > limit else show_value(value)
            raise _fail(f"field '{name}' is {shown}; expected {what} of at most {limit} printable characters")
        return value
    return check


def _camera(name: str, value: Any) -> str:
    problem = camera_name_problem(value)
    if problem is not None:
        raise _fail(f"field '{name}' {problem}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"field '{name}' is {show_value(value)}; expected true or false")
    return value


def _values(name: str, value: Any) -> dict[str, bool | int | float | str | None]:
    if not isinstance(value, Mapping):
        raise _fail(f"field '{name}' is {type(value).__name__}; expected a map of setting names to values")
    if len(value) > MAX_VALUES:
        raise _fail(f"field '{name}' has {len(value)} entries; expected at most {MAX_VALUES}")
    out: dict[str, bool | int | float | str | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_KEY or not _KEY.fullmatch(key):
            raise _fail(f"field '{name}' has key {show_value(key)}; expected a setting name like jpeg_quality "
                        f"([a-z][a-z0-9_]*, at most {MAX_KEY} characters)")
        if item is None or isinstance(item, bool):
            out[key] = item
        elif is_int(item):
            out[key] = _integer(*_INT64, "a signed 64-bit integer")(f"{name}.{key}", item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _fail(f"field '{name}.{key}' is {item}; expected a finite number")
            out[key] = float(item)
        elif isinstance(item, str):
            out[key] = _text(MAX_TEXT)(f"{name}.{key}", item)
        else:
            raise _fail(f"field '{name}.{key}' is {show_value(item)}; expected a bool, integer, number, string or nil")
    return out


_COUNT = _integer(0, _UINT64_MAX, "an integer from 0 to 2**64-1")
_TIME = _integer(*_INT64, "integer nanoseconds (signed 64-bit)")
_OFFSET = _integer(*_INT64, "integer nanoseconds (signed 64-bit)", optional=True)
_SIDE = _integer(1, MAX_SIDE, f"an integer number of pixels from 1 to {MAX_SIDE}", optional=True)


# --------------------------------------------------------------------------- the messages
class _Message:
    """What every control message shares: its ``type`` and the checks of its fields."""

    TYPE: ClassVar[str]
    CHECKS: ClassVar[dict[str, Check]]
    #: Fields that may be absent from a received map (they take their default).
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for f in fields(self):   # type: ignore[arg-type]
            object.__setattr__(self, f.name, self.CHECKS[f.name](f.name, getattr(self, f.name)))

    def to_map(self) -> dict[str, Any]:
        """The message as the msgpack map that goes on the wire (schema, version, type and fields)."""
        doc: dict[str, Any] = {"schema": SCHEMA, "version": VERSION, "type": self.TYPE}
        for f in fields(self):   # type: ignore[arg-type]
            value = getattr(self, f.name)
            doc[f.name] = dict(value) if isinstance(value, Mapping) else value
        return doc


@dataclass(frozen=True)
class Register(_Message):
    """A node announces itself (node → server). Times: none; size in pixels, rate in frames/s."""

    camera: str
    clock_endpoint: str = ""
    software_version: str = ""
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    TYPE: ClassVar[str] = "register"
    CHECKS: ClassVar[dict[str, Check]] = {
        "camera": _camera, "clock_endpoint": _text(MAX_TEXT, "an endpoint string (may be empty)"),
        "software_version": _text(MAX_VERSION_TEXT), "width": _SIDE, "height": _SIDE,
        "fps": _number(0.0, "a non-negative number of frames per second", optional=True)}
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"width", "height", "fps"})


@dataclass(frozen=True)
class Registered(_Message):
    """The server's answer to a register, or to a heartbeat from a node it does not know (server → node)."""

    camera: str
    accepted: bool
    reason: str = ""
    heartbeat_timeout_s: float | None = None

    TYPE: ClassVar[str] = "registered"
    CHECKS: ClassVar[dict[str, Check]] = {
        "camera": _camera, "accepted": _flag, "reason": _text(MAX_TEXT),
        "heartbeat_timeout_s": _number(0.0, "a positive number of seconds", optional=True)}
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"heartbeat_timeout_s"})


@dataclass(frozen=True)
class Heartbeat(_Message):
    """The node is alive (node → server): its heartbeat counter and frame counters since it started."""

    camera: str
    sequence: int
    grabbed: int = 0
    sent: int = 0
    dropped: int = 0

    TYPE: ClassVar[str] = "heartbeat"
    CHECKS: ClassVar[dict[str, Check]] = {"camera": _camera, "sequence": _COUNT, "grabbed": _COUNT,
                                          "sent": _COUNT, "dropped": _COUNT}


@dataclass(frozen=True)
class StartRecording(_Message):
    """Start recording ``session`` at studio time ``studio_time_ns`` (server → node).

    ``clock_offset_ns`` is the node's clock minus the studio clock at that time (from the server's clock
    model of this node), so the node's own clock reads ``studio_time_ns + clock_offset_ns`` then; nil when
    the server has no model of the node yet.
    """

    command_id: int
    session: str
    studio_time_ns: int
    clock_offset_ns: int | None = None

    TYPE: ClassVar[str] = "start_recording"
    CHECKS: ClassVar[dict[str, Check]] = {"command_id": _COUNT, "session": _text(MAX_SESSION),
                                          "studio_time_ns": _TIME, "clock_offset_ns": _OFFSET}
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"clock_offset_ns"})


@dataclass(frozen=True)
class StopRecording(_Message):
    """Stop recording at studio time ``studio_time_ns`` (server → node); ``clock_offset_ns`` as in a start."""

    command_id: int
    studio_time_ns: int
    clock_offset_ns: int | None = None

    TYPE: ClassVar[str] = "stop_recording"
    CHECKS: ClassVar[dict[str, Check]] = {"command_id": _COUNT, "studio_time_ns": _TIME, "clock_offset_ns": _OFFSET}
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"clock_offset_ns"})


@dataclass(frozen=True)
class Configure(_Message):
    """Change settings of one node (server → node), e.g. ``{"jpeg_quality": 80}``."""

    command_id: int
    camera: str
    values: Mapping[str, bool | int | float | str | None]

    TYPE: ClassVar[str] = "configure"
    CHECKS: ClassVar[dict[str, Check]] = {"command_id": _COUNT, "camera": _camera, "values": _values}


def _acked(name: str, value: Any) -> str:
    if value not in ACKABLE:
        raise _fail(f"field '{name}' is {show_value(value)}; expected one of {', '.join(ACKABLE)}")
    return value


@dataclass(frozen=True)
class Ack(_Message):
    """A command carried out or refused (node → server), or a heartbeat received (server → node)."""

    of: str
    command_id: int
    camera: str
    ok: bool = True
    reason: str = ""

    TYPE: ClassVar[str] = "ack"
    CHECKS: ClassVar[dict[str, Check]] = {"of": _acked, "command_id": _COUNT, "camera": _camera, "ok": _flag,
                                          "reason": _text(MAX_TEXT)}


#: Any control message.
ControlMessage = Register | Registered | Heartbeat | StartRecording | StopRecording | Configure | Ack
#: Each message class by its ``type``.
TYPES: dict[str, type[_Message]] = {cls.TYPE: cls for cls in
                                    (Register, Registered, Heartbeat, StartRecording, StopRecording, Configure, Ack)}
#: The types an :class:`Ack` can acknowledge.
ACKABLE = ("heartbeat", "start_recording", "stop_recording", "configure")


# --------------------------------------------------------------------------- wire
def encode_control(message: ControlMessage) -> bytes:
    """The one frame that carries ``message`` (a msgpack map, see the module docstring).

    Raises:
        ControlMessageError: ``message`` is not a control message, or is longer than :data:`MAX_MESSAGE_BYTES`.
    """
    if not isinstance(message, _Message):
        raise _fail(f"cannot encode {type(message).__name__}; expected one of {', '.join(TYPES)}")
    data = msgpack.packb(message.to_map(), use_bin_type=True)
    if len(data) > MAX_MESSAGE_BYTES:
        raise _fail(f"{message.TYPE} encodes to {len(data)} bytes; expected at most {MAX_MESSAGE_BYTES}")
    return data


def decode_control(data: object) -> ControlMessage:
    """The control message in one received frame (``bytes`` or a ``zmq.Frame``-like object with ``.bytes``).

    Raises:
        ControlMessageError: anything that breaks the schema (not bytes, too long, not msgpack, not a map,
            wrong schema or version, unknown type, a missing or mistyped field), with a one-line message
            naming the field and what was expected. Nothing else is raised, whatever the input.
    """
    data = getattr(data, "bytes", data)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise _fail(f"a message is {type(data).__name__}; expected bytes (one msgpack map)")
    if len(data) > MAX_MESSAGE_BYTES:
        raise _fail(f"a message has {len(data)} bytes; expected a msgpack map of at most {MAX_MESSAGE_BYTES} bytes")
    doc = unpack_map(data, "a message", SCHEMA, _fail)
    check_schema_version(doc, SCHEMA, VERSION, _fail)
    kind = doc.get("type")
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _fail(f"field 'type' is {show_value(kind)}; expected one of {', '.join(TYPES)}")
    kwargs = {}
    for f in fields(cls):   # type: ignore[arg-type]
        if f.name in doc:
            kwargs[f.name] = doc[f.name]
        elif f.name not in cls.OPTIONAL:
            raise _fail(f"{kind} has no field '{f.name}'")
    try:
        return cls(**kwargs)   # type: ignore[return-value]
    except ControlMessageError:
        raise
    except Exception as exc:   # noqa: BLE001 - the contract: nothing but ControlMessageError, whatever the input
        raise _fail(f"{kind}: {type(exc).__name__}: {str(exc)[:80]}") from None
