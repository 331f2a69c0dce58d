"""The control channel's messages (``posestudio.control`` version 1): round trips, one-line errors, fuzzing."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from posestudio.core.control_messages import (
    ACKABLE,
    TYPES,
    Ack,
    Configure,
    ControlMessageError,
    Heartbeat,
    Register,
    Registered,
    StartRecording,
    StopRecording,
    decode_control,
    encode_control,
)


def test_a_message_built_badly_is_refused_before_it_is_sent() -> None:
    with pytest.raises(ControlMessageError, match="field 'camera'"):
        Register("cam/01")
    with pytest.raises(ControlMessageError, match="field 'values'"):
        Configure(1, "cam01", {f"k{i}": i for i in range(40)})
    with pytest.raises(ControlMessageError, match="field 'reason'"):
        Ack("configure", 1, "cam01", False, "two\nlines")
    with pytest.raises(ControlMessageError, match="field 'of'"):
        Ack("register", 1, "cam01")
    with pytest.raises(ControlMessageError, match="cannot encode"):
        encode_control("heartbeat")  # type: ignore[arg-type]


def test_optional_fields_may_be_absent_and_unknown_keys_are_ignored() -> None:
    doc = {"schema": "posestudio.control", "version": 1, "type": "register", "camera": "cam01",
           "clock_endpoint": "", "software_version": "9.9", "added_in_a_later_minor": [1, 2]}
    assert decode_control(msgpack.packb(doc)) == Register("cam01", "", "9.9")


# --------------------------------------------------------------------------- messages
def test_every_message_round_trips_as_the_documented_map() -> None:
    messages = [Register("cam01", "tcp://10.0.0.2:5581", "0.1.0", 1920, 1080, 30.0), Register("cam02"),
                Registered("cam01", True, "", 2.0), Registered("cam01", False, "unknown node"),
                Heartbeat("cam01", 7, 100, 98, 2), StartRecording(1, "take 3", 10**18, -123_456_789),
                StopRecording(2, 10**18 + 5, None),
                Configure(3, "cam01", {"jpeg_quality": 80, "fps": 29.97, "note": "x", "flag": True, "off": None}),
                Ack("configure", 3, "cam01", False, "jpeg_quality: expected 1 to 100")]
    assert {type(m).TYPE for m in messages} == set(TYPES)
    for message in messages:
        data = encode_control(message)
        assert decode_control(data) == message
        doc = msgpack.unpackb(data, raw=False)
        assert doc["schema"] == "posestudio.control" and doc["version"] == 1 and doc["type"] == message.TYPE
    assert set(ACKABLE) <= set(TYPES)


@pytest.mark.parametrize("doc, words", [
    ({"schema": "posestudio.frame", "version": 1, "type": "heartbeat"}, "schema"),
    ({"schema": "posestudio.control", "version": 2, "type": "heartbeat"}, "version 2 is newer"),
    ({"schema": "posestudio.control", "version": 1, "type": "reboot"}, "field 'type'"),
    ({"schema": "posestudio.control", "version": 1, "type": "heartbeat", "camera": "c"}, "no field 'sequence'"),
    ({"schema": "posestudio.control", "version": 1, "type": "heartbeat", "camera": "a/b", "sequence": 1,
      "grabbed": 0, "sent": 0, "dropped": 0}, "field 'camera'"),
    ({"schema": "posestudio.control", "version": 1, "type": "heartbeat", "camera": "c", "sequence": -1,
      "grabbed": 0, "sent": 0, "dropped": 0}, "field 'sequence'"),
    ({"schema": "posestudio.control", "version": 1, "type": "start_recording", "command_id": 1, "session": "s",
      "studio_time_ns": 1.5}, "field 'studio_time_ns'"),
    ({"schema": "posestudio.control", "version": 1, "type": "configure", "command_id": 1, "camera": "c",
      "values": {"Quality": 1}}, "field 'values' has key"),
    ({"schema": "posestudio.control", "version": 1, "type": "registered", "camera": "c", "accepted": 1,
      "reason": ""}, "field 'accepted'"),
])
def test_malformed_messages_raise_one_line_naming_the_field(doc: dict, words: str) -> None:
    with pytest.raises(ControlMessageError) as info:
        decode_control(msgpack.packb(doc, use_bin_type=True))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_fuzzed_decoder_raises_only_control_message_errors() -> None:
    rng = np.random.default_rng(16)
    good = [encode_control(m) for m in (Register("cam01", "tcp://h:1", "v", 640, 480, 30.0),
                                        Heartbeat("cam01", 1, 2, 3, 4), Configure(1, "c", {"a": 1}))]
    for i in range(2000):
        base = bytearray(good[i % len(good)])
        if i % 4 == 0:
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
        elif i % 4 == 1:
            data = bytes(base[: int(rng.integers(0, len(base)))])
        else:
            for _ in range(int(rng.integers(1, 6))):
                base[int(rng.integers(0, len(base)))] = int(rng.integers(0, 256))
            data = bytes(base)
        try:
            decode_control(data)
        except ControlMessageError:
            pass
    for junk in (None, 3, "text", [b"x"], b"\x00" * 5000):
        with pytest.raises(ControlMessageError):
            decode_control(junk)
