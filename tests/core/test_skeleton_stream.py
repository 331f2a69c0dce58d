"""The skeleton stream's message: bit-exact round trips (through real loopback sockets too) and a clear
StreamMessageError for every malformed message, never another exception."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgpack
import numpy as np
import pytest
import zmq

from posestudio.core.errors import InputError
from posestudio.core.skeleton_stream import (
    SCHEMA,
    TOPIC,
    UNSEQUENCED,
    VERSION,
    SkeletonFrame,
    StreamMessageError,
    decode_frame,
    encode_frame,
)

pytestmark = pytest.mark.timeout(30)

NAMES = ("pelvis", "left_hip", "right_hip", "head")


def two_people(sequence: int = 7) -> SkeletonFrame:
    """Two people, four joints, NaN where unknown (a signalling-free quiet NaN and one with a payload)."""
    rng = np.random.default_rng(3)
    points = rng.normal(0, 1, (2, 4, 3)).astype(np.float32)
    points[0, 3] = np.nan
    points[1, 1, 2] = np.frombuffer(np.uint32(0x7FC0_1234).tobytes(), np.float32)[0]   # NaN with a payload
    points[1, 0, 0] = -0.0
    confidence = np.array([[1.0, 0.5, 0.25, 0.0], [0.9, 0.0, 1.0, 0.125]], np.float32)
    return SkeletonFrame(sequence, 1234.5678901, NAMES, points, confidence, np.array([7, 42]), frame_index=3,
                         source="test rig")


def assert_same(a: SkeletonFrame, b: SkeletonFrame) -> None:
    """Equal field by field, arrays bit for bit (NaN payloads and signed zeros included)."""
    assert (a.sequence, a.timestamp_s, a.joint_names, a.frame_index, a.source) == \
           (b.sequence, b.timestamp_s, b.joint_names, b.frame_index, b.source)
    for name, dtype in (("points", np.float32), ("confidence", np.float32), ("person_ids", np.int64)):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name


def test_a_frame_round_trips_bit_exact() -> None:
    frame = two_people()
    parts = encode_frame(frame)
    assert len(parts) == 2 and parts[0] == TOPIC == b"skeleton"
    back = decode_frame(parts)
    assert_same(frame, back)
    assert back.n_people == 2 and back.points.flags.writeable


def test_the_payload_is_the_documented_msgpack_map() -> None:
    doc = msgpack.unpackb(encode_frame(two_people())[1], raw=False)
    assert doc["schema"] == SCHEMA == "posestudio.skeleton" and doc["version"] == VERSION == 1
    assert doc["points"]["dtype"] == "<f4" and doc["points"]["shape"] == [2, 4, 3]
    assert np.array_equal(np.frombuffer(doc["points"]["data"], "<f4").reshape(2, 4, 3), two_people().points,
                          equal_nan=True)
    assert doc["person_ids"] == {"dtype": "<i8", "shape": [2], "data": np.array([7, 42], "<i8").tobytes()}
    assert doc["joint_names"] == list(NAMES) and doc["frame_index"] == 3 and doc["source"] == "test rig"


def test_nobody_in_view_and_optional_fields_round_trip() -> None:
    empty = SkeletonFrame(0, 0.0, NAMES, np.zeros((0, 4, 3)), np.zeros((0, 4)), np.zeros(0, np.int64))
    assert_same(empty, decode_frame(encode_frame(empty)))
    assert empty.frame_index is None and empty.source == ""


def test_a_frame_is_converted_to_the_schema_types() -> None:
    f = SkeletonFrame(np.int64(1), np.float32(2.5), list(NAMES), np.ones((1, 4, 3)), [[1, 1, 0, 0]], [5])
    assert f.points.dtype == np.float32 and f.confidence.dtype == np.float32 and f.person_ids.dtype == np.int64
    assert f.joint_names == NAMES and type(f.sequence) is int and f.timestamp_s == 2.5


def test_unknown_fields_are_ignored_a_compatible_addition() -> None:
    topic, payload = encode_frame(two_people())
    doc = msgpack.unpackb(payload, raw=False)
    doc["velocity"] = {"dtype": "<f4", "shape": [0], "data": b""}
    assert_same(two_people(), decode_frame([topic, msgpack.packb(doc)]))


def test_an_unnumbered_frame_is_not_sent() -> None:
    with pytest.raises(StreamMessageError, match="'sequence' is unset"):
        encode_frame(two_people(sequence=UNSEQUENCED))


def _free_pub_sub(ctx: zmq.Context) -> tuple[zmq.Socket, zmq.Socket]:
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sub.connect(pub.getsockopt_string(zmq.LAST_ENDPOINT))
    return pub, sub


def test_a_frame_crosses_real_loopback_sockets_bit_exact() -> None:
    ctx = zmq.Context()
    pub, sub = _free_pub_sub(ctx)
    try:
        frame = two_people()
        deadline = time.monotonic() + 5
        got = None
        while got is None and time.monotonic() < deadline:   # the slow joiner: send until the SUB is in
            pub.send_multipart(encode_frame(frame))
            if sub.poll(50):
                got = sub.recv_multipart()
        assert got is not None, "nothing arrived over loopback in 5 s"
        assert_same(frame, decode_frame(got))
    finally:
        pub.close()
        sub.close()
        ctx.term()


def _payload(**changes: object) -> bytes:
    doc = msgpack.unpackb(encode_frame(two_people())[1], raw=False)
    for key, value in changes.items():
        if value is _DROP:
            del doc[key]
        elif callable(value):
            doc[key] = value(doc[key])
        else:
            doc[key] = value
    return msgpack.packb(doc, use_bin_type=True)


_DROP = object()


def _arr(dtype: str | None = None, shape: list | None = None, data: bytes | None = None,
         drop: str | None = None) -> Callable[[dict], dict]:
    def change(a: dict) -> dict:
        a = dict(a)
        for k, v in (("dtype", dtype), ("shape", shape), ("data", data)):
            if v is not None:
                a[k] = v
        if drop:
            del a[drop]
        return a
    return change


MALFORMED: list[tuple[str, list, str]] = [
    ("one part", [TOPIC], "1 parts; expected 2"),
    ("three parts", [TOPIC, b"", b""], "3 parts; expected 2"),
    ("not a list", b"skeleton", "expected 2 parts"),
    ("wrong topic", [b"frame/cam01/", _payload()], "topic is b'frame/cam01/'; expected b'skeleton'"),
    ("not msgpack", [TOPIC, b"\xc1garbage"], "is not msgpack"),
    ("truncated", [TOPIC, _payload()[:-5]], "is not msgpack"),
    ("empty payload", [TOPIC, b""], "is not msgpack"),
    ("a list", [TOPIC, msgpack.packb([1, 2])], "payload is a msgpack list; expected a map"),
    ("no schema", [TOPIC, _payload(schema=_DROP)], "missing field 'schema'"),
    ("wrong schema", [TOPIC, _payload(schema="other.thing")], "field 'schema' is 'other.thing'; expected 'posestudio.skeleton'"),
    ("newer version", [TOPIC, _payload(version=2)], "version 2 is newer than this reader's version 1"),
    ("older version", [TOPIC, _payload(version=0)], "version 0 is older than this reader's version 1"),
    ("version text", [TOPIC, _payload(version="1")], "field 'version' is '1'; expected the integer 1"),
    ("no version", [TOPIC, _payload(version=_DROP)], "missing field 'version'"),
    *[(f"no {f}", [TOPIC, _payload(**{f: _DROP})], f"missing field '{f}'")
      for f in ("sequence", "timestamp_s", "joint_names", "points", "confidence", "person_ids")],
    ("negative sequence", [TOPIC, _payload(sequence=-1)], "field 'sequence' is -1"),
    ("float sequence", [TOPIC, _payload(sequence=1.5)], "field 'sequence' is 1.5"),
    ("bool sequence", [TOPIC, _payload(sequence=True)], "field 'sequence' is True"),
    ("NaN time", [TOPIC, _payload(timestamp_s=float("nan"))], "field 'timestamp_s' is nan; expected a finite"),
    ("infinite time", [TOPIC, _payload(timestamp_s=float("inf"))], "field 'timestamp_s' is inf; expected a finite"),
    ("text time", [TOPIC, _payload(timestamp_s="now")], "field 'timestamp_s' is 'now'; expected a number"),
    ("names not a list", [TOPIC, _payload(joint_names="pelvis")], "field 'joint_names' is str; expected a list"),
    ("names not text", [TOPIC, _payload(joint_names=[1, 2, 3, 4])], "field 'joint_names' is list; expected a list of strings"),
    ("names twice", [TOPIC, _payload(joint_names=["a", "a", "b", "c"])], "names ['a'] more than once"),
    ("too few names", [TOPIC, _payload(joint_names=["a", "b"])], "'points' has 4 joints but 'joint_names' names 2"),
    ("points not a map", [TOPIC, _payload(points=b"\0" * 96)], "field 'points' is bytes; expected a map"),
    ("points lack data", [TOPIC, _payload(points=_arr(drop="data"))], "field 'points' lacks 'data'"),
    ("points float64", [TOPIC, _payload(points=_arr(dtype="<f8", data=b"\0" * 192))],
     "field 'points' has dtype '<f8'; expected '<f4'"),
    ("points big-endian", [TOPIC, _payload(points=_arr(dtype=">f4"))], "has dtype '>f4'; expected '<f4'"),
    ("points bytes short", [TOPIC, _payload(points=_arr(data=b"\0" * 95))],
     "field 'points' data has 95 bytes; expected 2*4*3 float32 = 96 bytes"),
    ("points shape 2-d", [TOPIC, _payload(points=_arr(shape=[8, 3]))], "field 'points' has shape [8, 3]; expected [people, joints, 3]"),
    ("points not xyz", [TOPIC, _payload(points=_arr(shape=[2, 6, 2]))], "field 'points' has shape (2, 6, 2); expected (people, joints, 3)"),
    ("points negative shape", [TOPIC, _payload(points=_arr(shape=[-2, 4, 3]))], "has shape [-2, 4, 3]"),
    ("points data text", [TOPIC, _payload(points=_arr(data="abc"))], "field 'points' data is str; expected bytes"),
    ("points infinite", [TOPIC, _payload(points=_arr(data=np.full(24, np.inf, "<f4").tobytes()))],
     "field 'points' holds infinite values"),
    ("confidence of 3 people", [TOPIC, _payload(confidence=_arr(shape=[3, 4], data=b"\0" * 48))],
     "field 'confidence' has shape (3, 4); expected (people, joints) = (2, 4)"),
    ("confidence above 1", [TOPIC, _payload(confidence=_arr(data=np.full(8, 1.5, "<f4").tobytes()))],
     "field 'confidence' holds 8 values outside [0, 1] (e.g. 1.5)"),
    ("confidence negative", [TOPIC, _payload(confidence=_arr(data=np.full(8, -0.1, "<f4").tobytes()))],
     "outside [0, 1]"),
    ("confidence NaN", [TOPIC, _payload(confidence=_arr(data=np.full(8, np.nan, "<f4").tobytes()))],
     "outside [0, 1] (e.g. nan)"),
    ("ids of 3 people", [TOPIC, _payload(person_ids=_arr(shape=[3], data=b"\0" * 24))],
     "field 'person_ids' has shape (3,); expected (people,) = (2,)"),
    ("ids int32", [TOPIC, _payload(person_ids=_arr(dtype="<i4", data=b"\0" * 8))], "dtype '<i4'; expected '<i8'"),
    ("ids twice", [TOPIC, _payload(person_ids=_arr(data=np.array([5, 5], "<i8").tobytes()))],
     "track id more than once"),
    ("frame index text", [TOPIC, _payload(frame_index="3")], "field 'frame_index' is '3'"),
    ("source number", [TOPIC, _payload(source=5)], "field 'source' is int; expected a string"),
]


@pytest.mark.parametrize("parts, words", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_every_malformed_message_raises_a_clear_error(parts: list, words: str) -> None:
    with pytest.raises(StreamMessageError) as info:
        decode_frame(parts)
    message = str(info.value)
    assert isinstance(info.value, InputError)
    assert words in message, message
    assert "\n" not in message and message.startswith("skeleton stream: ")


def test_random_and_damaged_messages_raise_only_stream_message_errors() -> None:
    """A fuzzed decoder: random bytes, truncations and flipped bytes never raise anything else."""
    rng = np.random.default_rng(0)
    good = encode_frame(two_people())[1]
    refused = 0
    for i in range(3000):
        if i % 3 == 0:
            payload = rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes()
        elif i % 3 == 1:
            payload = good[:rng.integers(0, len(good))]
        else:
            damaged = np.frombuffer(good, np.uint8).copy()
            where = rng.integers(0, damaged.size, rng.integers(1, 4))
            damaged[where] = rng.integers(0, 256, where.size)
            payload = damaged.tobytes()
        try:
            decode_frame([TOPIC, payload])
        except StreamMessageError:
            refused += 1
    assert refused > 2000


def test_a_frame_built_badly_is_refused_before_it_is_sent() -> None:
    with pytest.raises(StreamMessageError, match="'confidence' has shape"):
        SkeletonFrame(0, 0.0, NAMES, np.zeros((2, 4, 3)), np.zeros((2, 3)), [0, 1])
    with pytest.raises(StreamMessageError, match="'person_ids' has dtype float64; expected int64"):
        SkeletonFrame(0, 0.0, NAMES, np.zeros((1, 4, 3)), np.zeros((1, 4)), [0.5])
    with pytest.raises(StreamMessageError, match="'timestamp_s' is inf"):
        SkeletonFrame(0, 10**400, NAMES, np.zeros((1, 4, 3)), np.zeros((1, 4)), [0])
