"""The capture frame message: one camera frame as ZeroMQ multipart ``[topic, header, payload]`` (schema
``posestudio.frame``, version 1).

This module is the one definition of the message. Capture nodes (``capture/node.py``, ``posestudio
node``) encode through it; the live server and the benchmarks decode through it. ``docs/live_studio.md``
describes the same schema for readers in other languages.

Each message has three parts:

- ``topic``: ``b"frame/<camera>/"`` (:func:`frame_topic`). It ends in a separator, so a SUB socket
  subscribed to ``b"frame/cam1/"`` never receives ``cam10``; ``b"frame/"`` receives every camera.
- ``header``: one msgpack map (strings as msgpack str)::

    schema           str       "posestudio.frame"
    version          int       1 (the major version; see below)
    session          str       the recording session (free text, may be empty)
    camera           str       the camera's name, as in the rig (1-128 characters, no "/", no control characters)
    sequence         int       the node's frame counter, +1 per grabbed frame, from 0; a gap is a dropped frame
    capture_time_ns  int       the frame's capture time, integer nanoseconds of the node's clock as stamped
                               (the midpoint of the grab call minus the camera's latency); the server
                               converts it to studio time with the clock sync (signed 64-bit)
    clock_offset_ns  int|nil   optional: studio time minus node time, ns, when the node knows it
    uncertainty_ns   int|nil   optional: that offset's uncertainty, ns (>= 0)
    width, height    int       the image size, pixels (1 to 16384 each)
    encoding         str       "jpeg" (baseline or progressive JFIF) or "raw-bgr8" (height*width*3 bytes, BGR, rows
                               top to bottom, no padding)
    payload_bytes    int       the payload's length, bytes

- ``payload``: the image, as ``encoding`` says.

Versioning: ``version`` is a major version. Adding an optional field keeps it (readers ignore keys they
do not know); removing a field, or changing a field's meaning, type or unit, raises it. A reader refuses a
message whose version differs from :data:`VERSION`, naming both.

:func:`decode_frame_message` raises :class:`FrameMessageError` (an :class:`~posestudio.core.errors.InputError`)
with a one-line message naming the part or field and what was expected for every malformed message, and
never raises anything else on any input, so a server can count and skip bad messages. It checks the
header, that the topic names the header's camera, that the payload has ``payload_bytes`` bytes, and for
JPEG that the payload starts a JPEG stream whose frame header declares ``width`` x ``height`` (a few
marker headers read, not the image decoded, so a damaged stream can never make a decoder allocate more
than the header's size). :meth:`FrameMessage.image` decodes the pixels and raises the same error when the
JPEG data cannot be decoded. :func:`encode_frame_message` checks the same rules, so a node never sends a
message the server would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import msgpack
import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .wire import check_schema_version, is_int, show_value, unpack_map

#: The ``schema`` field's value.
SCHEMA = "posestudio.frame"
#: The major version this module writes and reads.
VERSION = 1
#: Every frame topic starts with it; a SUB socket subscribed to it receives every camera.
TOPIC_PREFIX = b"frame/"
#: JPEG, and uncompressed 8-bit BGR.
JPEG = "jpeg"
RAW_BGR8 = "raw-bgr8"
ENCODINGS = (JPEG, RAW_BGR8)
#: The largest image side, pixels.
MAX_SIDE = 16384
#: The longest camera name and session, characters.
MAX_NAME = 128
MAX_SESSION = 256
#: A header longer than this (bytes) is refused before it is unpacked (a real one is about 200 bytes).
MAX_HEADER_BYTES = 4096

_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
# JPEG start-of-frame markers (SOF0-SOF15 but DHT C4, JPG C8, DAC CC) and markers without a length
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


class FrameMessageError(InputError):
    """A capture frame message that breaks the schema; the message names the part or field and what was expected."""


def _fail(what: str) -> FrameMessageError:
    return FrameMessageError(f"frame message: {what}")


def camera_name_problem(camera: object) -> str | None:
    """Why ``camera`` cannot name a camera in a topic (None when it can)."""
    if not isinstance(camera, str):
        return f"is {type(camera).__name__}; expected a string"
    if not 1 <= len(camera) <= MAX_NAME:
        return f"has {len(camera)} characters; expected 1 to {MAX_NAME}"
    if "/" in camera:
        return f"{show_value(camera)} holds '/'; expected a name without the topic separator"
    if not camera.isprintable():
        return f"{show_value(camera)} holds control characters; expected a printable name"
    return None


def frame_topic(camera: str) -> bytes:
    """The topic of ``camera``'s frames: ``b"frame/<camera>/"`` (UTF-8).

    Raises:
        FrameMessageError: ``camera`` is not a usable name (see :func:`camera_name_problem`).
    """
    problem = camera_name_problem(camera)
    if problem is not None:
        raise _fail(f"camera name {problem}")
    return TOPIC_PREFIX + camera.encode("utf-8") + b"/"


@dataclass(frozen=True, eq=False)
class FrameMessage:
    """One decoded frame message: the header's fields and the payload.

    Attributes:
        session: the recording session (may be empty).
        camera: the camera's name.
        sequence: the node's frame counter (from 0, +1 per grabbed frame).
        capture_time_ns: capture time, integer nanoseconds of the node's clock.
        width, height: image size, pixels.
        encoding: ``"jpeg"`` or ``"raw-bgr8"``.
        payload: the image bytes as ``encoding`` says.
        clock_offset_ns: studio time minus node time, ns, when the node sent it (else None).
        uncertainty_ns: that offset's uncertainty, ns (else None).
    """

    session: str
    camera: str
    sequence: int
    capture_time_ns: int
    width: int
    height: int
    encoding: str
    payload: bytes
    clock_offset_ns: int | None = None
    uncertainty_ns: int | None = None

    @property
    def topic(self) -> bytes:
        """The message's topic part, ``b"frame/<camera>/"``."""
        return frame_topic(self.camera)

    @property
    def payload_bytes(self) -> int:
        """The payload's length, bytes."""
        return len(self.payload)

    def image(self) -> NDArray[np.uint8]:
        """The pixels: a writable ``(height, width, 3)`` uint8 BGR array (JPEG decoded with OpenCV).

        Raises:
            FrameMessageError: the JPEG data cannot be decoded, or decodes to another size.
        """
        if self.encoding == RAW_BGR8:
            return np.frombuffer(self.payload, np.uint8).reshape(self.height, self.width, 3).copy()
        try:
            img = cv2.imdecode(np.frombuffer(self.payload, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise _fail(f"camera {self.camera!r} frame {self.sequence}: JPEG payload cannot be decoded "
                        f"({str(exc).strip().splitlines()[-1][:80]})") from None
        if img is None:
            raise _fail(f"camera {self.camera!r} frame {self.sequence}: JPEG payload of {len(self.payload)} bytes "
                        "cannot be decoded; expected a JPEG image")
        if img.shape != (self.height, self.width, 3):
            raise _fail(f"camera {self.camera!r} frame {self.sequence}: JPEG decodes to {img.shape[1]}x{img.shape[0]}; "
                        f"expected the header's {self.width}x{self.height}")
        return img


# --------------------------------------------------------------------------- encoding
def encode_image(image: NDArray[np.uint8], encoding: str = JPEG, jpeg_quality: int = 90) -> bytes:
    """The payload of ``image`` in ``encoding``.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` uint8 grey (sent as BGR).
        encoding: ``"jpeg"`` or ``"raw-bgr8"``.
        jpeg_quality: JPEG quality, 1 to 100.

    Raises:
        FrameMessageError: an image of another shape or type, an unknown encoding or quality.
    """
    img = _checked_image(image)
    if encoding == RAW_BGR8:
        return np.ascontiguousarray(img).tobytes()
    if encoding != JPEG:
        raise _fail(f"field 'encoding' is {show_value(encoding)}; expected one of {', '.join(ENCODINGS)}")
    if not is_int(jpeg_quality) or not 1 <= int(jpeg_quality) <= 100:
        raise _fail(f"JPEG quality {show_value(jpeg_quality)}; expected an integer from 1 to 100")
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:   # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise _fail(f"OpenCV could not JPEG-encode a {img.shape[1]}x{img.shape[0]} image")
    return buf.tobytes()


def _checked_image(image: object) -> NDArray[np.uint8]:
    """``image`` as ``(H, W, 3)`` uint8 BGR (grey expanded), its size checked."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = f"{image.dtype} array" if isinstance(image, np.ndarray) else type(image).__name__
        raise _fail(f"image is {kind}; expected a uint8 BGR array (H, W, 3)")
    if image.ndim == 2:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise _fail(f"image has shape {image.shape}; expected (H, W, 3) BGR or (H, W) grey")
    h, w = image.shape[:2]
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise _fail(f"image is {w}x{h}; expected 1 to {MAX_SIDE} pixels a side")
    return image


def encode_frame_message(camera: str, sequence: int, capture_time_ns: int, image: NDArray[np.uint8] | None = None,
                         *, payload: bytes | None = None, width: int | None = None, height: int | None = None,
                         encoding: str = JPEG, jpeg_quality: int = 90, session: str = "",
                         clock_offset_ns: int | None = None, uncertainty_ns: int | None = None) -> list[bytes]:
    """The three parts ``[topic, header, payload]`` of one frame (see the module docstring).

    Give either ``image`` (encoded here as ``encoding``) or an already encoded ``payload`` with its
    ``width`` and ``height``.

    Args:
        camera: the camera's name; sequence: the node's frame counter (>= 0).
        capture_time_ns: capture time, integer nanoseconds of the node's clock.
        image: ``(H, W, 3)`` uint8 BGR (or ``(H, W)`` grey).
        payload, width, height: an encoded image and its size, pixels.
        encoding: ``"jpeg"`` or ``"raw-bgr8"``; jpeg_quality: 1 to 100 (with ``image`` only).
        session: the recording session; clock_offset_ns, uncertainty_ns: optional clock fields, ns.

    Raises:
        FrameMessageError: any field that breaks the schema (the same rules :func:`decode_frame_message` checks).
    """
    if (image is None) == (payload is None):
        raise _fail("give either an image or an encoded payload (with width and height)")
    if image is not None:
        img = _checked_image(image)
        height, width = img.shape[:2]
        payload = encode_image(img, encoding, jpeg_quality)
    elif not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _fail(f"payload is {type(payload).__name__}; expected bytes")
    payload = bytes(payload)
    header = {"schema": SCHEMA, "version": VERSION, "session": session, "camera": camera, "sequence": sequence,
              "capture_time_ns": capture_time_ns, "clock_offset_ns": clock_offset_ns,
              "uncertainty_ns": uncertainty_ns, "width": width, "height": height, "encoding": encoding,
              "payload_bytes": len(payload)}
    m = _checked(header, payload)   # numbers come back as plain ints (msgpack packs no NumPy scalars)
    packed = {"schema": SCHEMA, "version": VERSION, "session": m.session, "camera": m.camera, "sequence": m.sequence,
              "capture_time_ns": m.capture_time_ns, "clock_offset_ns": m.clock_offset_ns,
              "uncertainty_ns": m.uncertainty_ns, "width": m.width, "height": m.height, "encoding": m.encoding,
              "payload_bytes": len(payload)}
    return [m.topic, msgpack.packb(packed, use_bin_type=True), payload]


# --------------------------------------------------------------------------- decoding
def _field(doc: dict, name: str, what: str) -> Any:
    if name not in doc:
        raise _fail(f"missing field '{name}'; expected {what}")
    return doc[name]


def _int_field(doc: dict, name: str, lo: int, hi: int, what: str, optional: bool = False) -> int | None:
    value = doc.get(name) if optional else _field(doc, name, what)
    if value is None and optional:
        return None
    if not is_int(value) or not lo <= int(value) <= hi:
        raise _fail(f"field '{name}' is {show_value(value)}; expected {what}{' or nil' if optional else ''}")
    return int(value)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG stream's frame header (SOFn), or None when no frame header comes first.

    Reads only marker headers (a few, before the entropy-coded data), never the image data.
    """
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:   # fill bytes before a marker
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0xDA, 0x00):   # a second SOI, EOI or scan data before any frame header
            return None
        if i + 2 > n:
            return None
        length = (data[i] << 8) | data[i + 1]
        if length < 2:
            return None
        if marker in _SOF:
            if length < 8 or i + 7 > n:
                return None
            height = (data[i + 3] << 8) | data[i + 4]
            width = (data[i + 5] << 8) | data[i + 6]
            return width, height
        i += length
    return None


def _checked(doc: dict, payload: bytes) -> FrameMessage:
    """The :class:`FrameMessage` of a header map and payload, every rule of the schema checked."""
    check_schema_version(doc, SCHEMA, VERSION, _fail)
    session = _field(doc, "session", "a string (may be empty)")
    if not isinstance(session, str) or len(session) > MAX_SESSION:
        what = f"{len(session)} characters" if isinstance(session, str) else type(session).__name__
        raise _fail(f"field 'session' is {what}; expected a string of at most {MAX_SESSION} characters")
    camera = _field(doc, "camera", "the camera's name")
    problem = camera_name_problem(camera)
    if problem is not None:
        raise _fail(f"field 'camera' {problem}")
    sequence = _int_field(doc, "sequence", 0, _UINT64_MAX, "an integer from 0 to 2**64-1")
    capture = _int_field(doc, "capture_time_ns", *_INT64, "integer nanoseconds (signed 64-bit)")
    offset = _int_field(doc, "clock_offset_ns", *_INT64, "integer nanoseconds (signed 64-bit)", optional=True)
    uncertainty = _int_field(doc, "uncertainty_ns", 0, _INT64[1], "non-negative integer nanoseconds", optional=True)
    width = _int_field(doc, "width", 1, MAX_SIDE, f"an integer number of pixels from 1 to {MAX_SIDE}")
    height = _int_field(doc, "height", 1, MAX_SIDE, f"an integer number of pixels from 1 to {MAX_SIDE}")
    encoding = _field(doc, "encoding", f"one of {', '.join(ENCODINGS)}")
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise _fail(f"field 'encoding' is {show_value(encoding)}; expected one of {', '.join(ENCODINGS)}")
    size = _int_field(doc, "payload_bytes", 0, _INT64[1], "the payload's length in bytes")
    if len(payload) != size:
        raise _fail(f"payload has {len(payload)} bytes but field 'payload_bytes' says {size}; expected the same "
                    "(a truncated or damaged message)")
    if encoding == RAW_BGR8:
        if size != width * height * 3:
            raise _fail(f"raw-bgr8 payload has {size} bytes; expected {width}*{height}*3 = {width * height * 3} "
                        "for the header's size")
    else:
        found = _jpeg_size(payload)
        if found is None:
            raise _fail(f"camera {camera!r} frame {sequence}: JPEG payload of {size} bytes has no JPEG start and frame "
                        "header; expected a JPEG image")
        if found != (width, height):
            raise _fail(f"camera {camera!r} frame {sequence}: JPEG payload is {found[0]}x{found[1]}; expected the "
                        f"header's {width}x{height}")
    return FrameMessage(session=session, camera=camera, sequence=sequence, capture_time_ns=capture, width=width,
                        height=height, encoding=encoding, payload=payload, clock_offset_ns=offset,
                        uncertainty_ns=uncertainty)


def _as_bytes(part: object) -> bytes | None:
    part = getattr(part, "bytes", part)   # a zmq.Frame
    if isinstance(part, bytes):
        return part
    if isinstance(part, (bytearray, memoryview)):
        return bytes(part)
    return None


def decode_frame_message(parts: Sequence[bytes]) -> FrameMessage:
    """The :class:`FrameMessage` in a received multipart message ``[topic, header, payload]``.

    Args:
        parts: the message parts (``bytes``, or ``zmq.Frame``-like objects with ``.bytes``).

    Raises:
        FrameMessageError: anything that breaks the schema (part count, a header that is not msgpack,
            schema or version, a missing or mistyped field, a payload whose size or JPEG frame header
            disagrees with the header, a topic that is not the camera's), with a one-line message naming
            the part or field and what was expected. Nothing else is raised, whatever the input.
    """
    if isinstance(parts, (bytes, bytearray, str)) or not isinstance(parts, Sequence):
        raise _fail(f"a message is {type(parts).__name__}; expected 3 parts [topic, header, payload]")
    if len(parts) != 3:
        raise _fail(f"a message has {len(parts)} parts; expected 3 [topic, header, payload]")
    topic, header, payload = (_as_bytes(p) for p in parts)
    if topic is None or header is None or payload is None:
        raise _fail("message parts are not bytes; expected 3 byte strings [topic, header, payload]")
    if not topic.startswith(TOPIC_PREFIX):
        raise _fail(f"topic is {topic[:40]!r}; expected b'frame/<camera>/'")
    if len(header) > MAX_HEADER_BYTES:
        raise _fail(f"header has {len(header)} bytes; expected a msgpack map of at most {MAX_HEADER_BYTES} bytes")
    doc = unpack_map(header, "header", SCHEMA, _fail)
    message = _checked(doc, payload)
    expected = frame_topic(message.camera)
    if topic != expected:
        raise _fail(f"topic {topic[:40]!r} does not name the header's camera {message.camera!r}; expected {expected!r}")
    return message

