"""The capture frame message: bit-exact raw round trips, JPEG within tolerance, and a one-line
FrameMessageError (never another exception) for every malformed message."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import msgpack
import numpy as np
import pytest

from posestudio.core.errors import InputError
from posestudio.core.frame_messages import (
    SCHEMA,
    TOPIC_PREFIX,
    VERSION,
    FrameMessage,
    FrameMessageError,
    decode_frame_message,
    encode_frame_message,
    encode_image,
    frame_topic,
)

pytestmark = pytest.mark.timeout(60)


def textured(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth colour texture (JPEG-friendly), ``(h, w, 3)`` uint8 BGR."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def header_of(parts: list[bytes]) -> dict:
    return msgpack.unpackb(parts[1], raw=False)


def with_header(parts: list[bytes], **changes: object) -> list[bytes]:
    """``parts`` with header fields changed (a value of ``...`` removes the field)."""
    doc = header_of(parts)
    for key, value in changes.items():
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    return [parts[0], msgpack.packb(doc, use_bin_type=True), parts[2]]


def test_raw_frames_round_trip_bit_exact() -> None:
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    parts = encode_frame_message("cam03", 12, -5_000_000_123, img, encoding="raw-bgr8", session="take 1",
                                 clock_offset_ns=-1_234_567, uncertainty_ns=250_000)
    assert len(parts) == 3 and parts[0] == b"frame/cam03/"
    m = decode_frame_message(parts)
    assert (m.session, m.camera, m.sequence, m.capture_time_ns, m.clock_offset_ns, m.uncertainty_ns) == \
           ("take 1", "cam03", 12, -5_000_000_123, -1_234_567, 250_000)
    assert (m.width, m.height, m.encoding, m.payload_bytes) == (53, 37, "raw-bgr8", 37 * 53 * 3)
    back = m.image()
    assert back.dtype == np.uint8 and back.shape == img.shape and back.tobytes() == img.tobytes()
    assert back.flags.writeable and m.topic == parts[0]


def test_jpeg_frames_round_trip_within_tolerance() -> None:
    img = textured(120, 160)
    m = decode_frame_message(encode_frame_message("cam1", 0, 10**18, img, jpeg_quality=95))
    assert (m.width, m.height, m.encoding) == (160, 120, "jpeg")
    back = m.image()
    assert back.shape == img.shape
    assert np.abs(back.astype(int) - img).mean() < 3.0
    low = decode_frame_message(encode_frame_message("cam1", 0, 0, img, jpeg_quality=10))
    assert low.payload_bytes < m.payload_bytes           # the quality is applied


def test_grey_images_are_sent_as_bgr_and_a_payload_can_be_given_encoded() -> None:
    grey = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    m = decode_frame_message(encode_frame_message("cam1", 1, 2, grey, encoding="raw-bgr8"))
    assert np.array_equal(m.image(), np.repeat(grey[..., None], 3, axis=2))
    payload = encode_image(textured(), "jpeg", 80)
    parts = encode_frame_message("cam1", np.int64(3), np.int64(4), payload=payload, width=64, height=48)
    assert parts[2] == payload and decode_frame_message(parts).sequence == 3


def test_the_header_is_the_documented_msgpack_map() -> None:
    parts = encode_frame_message("cam1", 7, 99, textured(), session="s1")
    doc = header_of(parts)
    assert doc == {"schema": SCHEMA, "version": VERSION, "session": "s1", "camera": "cam1", "sequence": 7,
                   "capture_time_ns": 99, "clock_offset_ns": None, "uncertainty_ns": None, "width": 64,
                   "height": 48, "encoding": "jpeg", "payload_bytes": len(parts[2])}
    assert SCHEMA == "posestudio.frame" and VERSION == 1


def test_topics_end_in_a_separator_so_prefixes_never_mix_cameras() -> None:
    assert frame_topic("cam1") == b"frame/cam1/" and frame_topic("cam10") == b"frame/cam10/"
    assert not frame_topic("cam10").startswith(frame_topic("cam1"))
    assert frame_topic("cam10").startswith(TOPIC_PREFIX)
    for bad in ("", "a/b", "tab\there", 7, "x" * 129):
        with pytest.raises(FrameMessageError, match="camera name"):
            frame_topic(bad)   # type: ignore[arg-type]


def test_optional_fields_may_be_absent_and_unknown_keys_are_ignored() -> None:
    parts = encode_frame_message("cam1", 0, 0, textured())
    m = decode_frame_message(with_header(parts, clock_offset_ns=..., uncertainty_ns=..., exposure_us=4000))
    assert m.clock_offset_ns is None and m.uncertainty_ns is None


GOOD = encode_frame_message("cam1", 5, 123, textured(), session="s")
RAW = encode_frame_message("cam1", 5, 123, textured(), encoding="raw-bgr8")

MALFORMED: dict[str, tuple[Callable[[], object], str]] = {
    "two parts": (lambda: GOOD[:2], "2 parts; expected 3"),
    "four parts": (lambda: [*GOOD, b""], "4 parts; expected 3"),
    "not a list": (lambda: b"frame/cam1/", "expected 3 parts"),
    "parts not bytes": (lambda: [GOOD[0], {"a": 1}, GOOD[2]], "not bytes"),
    "topic": (lambda: [b"skeleton", *GOOD[1:]], "topic is b'skeleton'"),
    "header not msgpack": (lambda: [GOOD[0], b"\xc1\xc1", GOOD[2]], "header of 2 bytes is not msgpack"),
    "header truncated": (lambda: [GOOD[0], GOOD[1][:20], GOOD[2]], "is not msgpack"),
    "header a list": (lambda: [GOOD[0], msgpack.packb([1, 2]), GOOD[2]], "header is a msgpack list"),
    "header huge": (lambda: [GOOD[0], msgpack.packb({"x": "y" * 5000}), GOOD[2]], "at most 4096 bytes"),
    "schema": (lambda: with_header(GOOD, schema="posestudio.skeleton"),
               "'schema' is 'posestudio.skeleton'; expected 'posestudio.frame'"),
    "newer version": (lambda: with_header(GOOD, version=2), "version 2 is newer than this reader's version 1"),
    "older version": (lambda: with_header(GOOD, version=0), "version 0 is older than this reader's version 1"),
    "version type": (lambda: with_header(GOOD, version="1"), "'version' is '1'; expected the integer 1"),
    "missing camera": (lambda: with_header(GOOD, camera=...), "missing field 'camera'"),
    "missing sequence": (lambda: with_header(GOOD, sequence=...), "missing field 'sequence'"),
    "missing capture time": (lambda: with_header(GOOD, capture_time_ns=...), "missing field 'capture_time_ns'"),
    "missing payload bytes": (lambda: with_header(GOOD, payload_bytes=...), "missing field 'payload_bytes'"),
    "missing session": (lambda: with_header(GOOD, session=...), "missing field 'session'"),
    "sequence negative": (lambda: with_header(GOOD, sequence=-1), "'sequence' is -1"),
    "sequence bool": (lambda: with_header(GOOD, sequence=True), "'sequence' is True"),
    "capture time float": (lambda: with_header(GOOD, capture_time_ns=1.5), "'capture_time_ns' is 1.5"),
    "capture time huge": (lambda: with_header(GOOD, capture_time_ns=2**63), "signed 64-bit"),
    "offset string": (lambda: with_header(GOOD, clock_offset_ns="0"), "'clock_offset_ns' is '0'"),
    "uncertainty negative": (lambda: with_header(GOOD, uncertainty_ns=-1), "'uncertainty_ns' is -1"),
    "width zero": (lambda: with_header(GOOD, width=0), "'width' is 0"),
    "height huge": (lambda: with_header(GOOD, height=70000), "'height' is 70000"),
    "width string": (lambda: with_header(GOOD, width="64"), "'width' is '64'"),
    "encoding": (lambda: with_header(GOOD, encoding="png"), "'encoding' is 'png'; expected one of jpeg, raw-bgr8"),
    "encoding list": (lambda: with_header(GOOD, encoding=["jpeg"]), r"'encoding' is \['jpeg'\]"),
    "session type": (lambda: with_header(GOOD, session=5), "'session' is int"),
    "camera type": (lambda: with_header(GOOD, camera=1), "'camera' is int"),
    "camera with slash": (lambda: with_header(GOOD, camera="a/b"), "holds '/'"),
    "payload truncated": (lambda: [*GOOD[:2], GOOD[2][:-10]], "payload has .* bytes but field 'payload_bytes' says"),
    "payload too long": (lambda: [*GOOD[:2], GOOD[2] + b"\0"], "but field 'payload_bytes' says"),
    "raw size": (lambda: with_header(RAW, width=32, payload_bytes=len(RAW[2])), "expected 32\\*48\\*3"),
    "topic of another camera": (lambda: [b"frame/cam10/", *GOOD[1:]], "does not name the header's camera 'cam1'"),
    "topic without separator": (lambda: [b"frame/cam1", *GOOD[1:]], "does not name the header's camera"),
    "not a jpeg": (lambda: with_header([GOOD[0], GOOD[1], b"\x89PNG" + bytes(60)], payload_bytes=64),
                   "no JPEG start and frame header"),
    "jpeg of another size": (lambda: with_header(GOOD, width=65), "JPEG payload is 64x48; expected the header's 65x48"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_message_raises_one_line_naming_what_is_wrong(case: str) -> None:
    make, expected = MALFORMED[case]
    with pytest.raises(FrameMessageError, match=expected) as info:
        decode_frame_message(make())   # type: ignore[arg-type]
    text = str(info.value)
    assert "\n" not in text and text.startswith("frame message: ")
    assert isinstance(info.value, InputError)


def test_an_undecodable_jpeg_raises_when_its_pixels_are_asked_for() -> None:
    payload = bytearray(GOOD[2])
    sof = payload.index(b"\xff\xc0")
    body = payload[:sof + 19] + b"\xff\xd9"   # SOI, tables and the frame header, then end of image: no scan
    m = decode_frame_message(with_header([GOOD[0], GOOD[1], bytes(body)], payload_bytes=len(body)))
    with pytest.raises(FrameMessageError, match="JPEG payload .* cannot be decoded"):
        m.image()


def test_a_frame_built_badly_is_refused_before_it_is_sent() -> None:
    img = textured()
    with pytest.raises(FrameMessageError, match="either an image or an encoded payload"):
        encode_frame_message("cam1", 0, 0)
    with pytest.raises(FrameMessageError, match="image is float64 array"):
        encode_frame_message("cam1", 0, 0, img.astype(float))
    with pytest.raises(FrameMessageError, match="shape \\(48, 64, 4\\)"):
        encode_frame_message("cam1", 0, 0, np.zeros((48, 64, 4), np.uint8))
    with pytest.raises(FrameMessageError, match="'sequence' is -1"):
        encode_frame_message("cam1", -1, 0, img)
    with pytest.raises(FrameMessageError, match="holds '/'"):
        encode_frame_message("a/b", 0, 0, img)
    with pytest.raises(FrameMessageError, match="JPEG quality 0"):
        encode_frame_message("cam1", 0, 0, img, jpeg_quality=0)
    with pytest.raises(FrameMessageError, match="'encoding' is 'png'"):
        encode_frame_message("cam1", 0, 0, img, encoding="png")
    with pytest.raises(FrameMessageError, match="JPEG payload is 64x48"):
        encode_frame_message("cam1", 0, 0, payload=GOOD[2], width=32, height=48)


def _damaged(rng: np.random.Generator, good: list[bytes], i: int) -> list[bytes]:
    """One damaged message: random bytes, a truncation or a few flipped bytes, in the header or the payload."""
    part = 1 if i % 2 else 2
    data = np.frombuffer(good[part], np.uint8)
    kind = (i // 2) % 3
    if kind == 0:
        new = rng.integers(0, 256, rng.integers(0, 300), dtype=np.uint8).tobytes()
    elif kind == 1:
        new = data[:rng.integers(0, data.size)].tobytes()
    else:
        damaged = data.copy()
        where = rng.integers(0, damaged.size, rng.integers(1, 4))
        damaged[where] = rng.integers(0, 256, where.size)
        new = damaged.tobytes()
    parts = list(good)
    parts[part] = new
    if part == 2 and rng.random() < 0.5:   # the header made to agree with the damaged payload's length
        parts = with_header(parts, payload_bytes=len(new))
    return parts


def test_a_fuzzed_decoder_raises_only_frame_message_errors() -> None:
    """2,000 damaged messages (header or payload; JPEG and raw): decoding and then the pixels either work
    or raise FrameMessageError, never anything else."""
    rng = np.random.default_rng(0)
    goods = [encode_frame_message("cam1", 5, 123, textured(), session="s"),
             encode_frame_message("cam1", 5, 123, textured(), encoding="raw-bgr8")]
    refused = decoded = 0
    for i in range(2000):
        parts = _damaged(rng, goods[(i // 6) % 2], i)
        try:
            m = decode_frame_message(parts)
            img = m.image()
            assert img.shape == (m.height, m.width, 3)
            decoded += 1
        except FrameMessageError as exc:
            assert "\n" not in str(exc)
            refused += 1
    assert refused + decoded == 2000 and refused > 1000


def test_a_frame_message_dataclass_holds_the_payload() -> None:
    m = decode_frame_message(GOOD)
    assert isinstance(m, FrameMessage) and m.payload == GOOD[2] and m.payload_bytes == len(GOOD[2])
