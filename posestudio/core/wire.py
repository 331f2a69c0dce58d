"""Helpers shared by the studio's versioned network messages (frames, skeletons, control).

Each message module (``frame_messages``, ``skeleton_stream``, ``control_messages``) checks every
field of what it decodes and names the field in a one-line error; these are the small pieces
those checks share.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import numpy as np


def show_value(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a malformed message can hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_int(value: object) -> bool:
    """True for Python and numpy integers, False for booleans (msgpack keeps them apart)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def unpack_map(data: bytes, what: str, schema: str, fail: Callable[[str], Exception]) -> dict:
    """The msgpack map in ``data``, or ``fail(reason)`` raised naming ``what`` and the schema.

    Args:
        data: the bytes of one message part; what: how errors name it (``"header"``, ``"payload"``).
        schema: the schema name the map should carry (for the message).
        fail: builds the module's own error from a reason.
    """
    try:
        doc = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as exc:
        raise fail(f"{what} of {len(data)} bytes is not msgpack ({type(exc).__name__}); "
                   f"expected a msgpack map with schema {schema!r}") from None
    if not isinstance(doc, dict):
        raise fail(f"{what} is a msgpack {type(doc).__name__}; expected a map with schema {schema!r}")
    return doc


def check_schema_version(doc: dict, schema: str, version: int, fail: Callable[[str], Exception]) -> None:
    """Refuse a map whose ``schema`` is not ``schema`` or whose ``version`` is not ``version``.

    Readers refuse any other major version, naming both, so an old reader never misreads a newer
    writer's message (and the reverse).
    """
    if "schema" not in doc:
        raise fail(f"missing field 'schema'; expected {schema!r}")
    if doc["schema"] != schema:
        raise fail(f"field 'schema' is {show_value(doc['schema'])}; expected {schema!r}")
    if "version" not in doc:
        raise fail(f"missing field 'version'; expected the integer {version}")
    found = doc["version"]
    if not is_int(found):
        raise fail(f"field 'version' is {show_value(found)}; expected the integer {version}")
    if found != version:
        newer = "newer than" if found > version else "older than"
        raise fail(f"version {found} is {newer} this reader's version {version}; expected version {version} "
                   "(update the older side)")
