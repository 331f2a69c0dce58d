"""The studio configuration file: :class:`StudioConfig` (``studio_configs/*.toml``).

One file describes a studio: its name and rig, where the reconstruction server listens, how it
assembles frame sets, which detector it runs, and its cameras::

    [studio]
    name = "example-studio"
    rig = "rig.toml"                  # relative to this file

    [server]
    host = "127.0.0.1"                # the interface the server binds ("*": every interface)
    data_port = 5560                  # SUB: frame messages from the capture nodes
    control_port = 5561               # ROUTER: the control channel
    skeleton_port = 5570              # PUB: the skeleton stream
    fps = 30.0                        # frame-set slots per second
    join_fraction = 0.25              # a frame joins a slot within this fraction of a period
    max_wait_s = 0.1                  # a slot leaves without the cameras still missing after this
    detector = "blazepose"            # "blazepose" | "tce" | "keypoints"

    [[cameras]]
    name = "cam1"                     # as in the rig
    clock = "tcp://capture-a.local:5581"   # optional: the node's clock responder (posestudio node --clock-bind)

Every field but ``[studio] rig`` and the cameras' names has a default (:data:`DEFAULTS`). A
port of 0 binds a free port (tests). Other sections (``[calibration]``, ``[thresholds]``) and
the cameras' capture keys (``node``, ``device``, ``size``, ``fps``) belong to other commands
and are not read here; an unknown key in ``[studio]``, ``[server]`` or ``[[cameras]]`` is logged
as a warning (a typo must not pass silently, and a newer file must still load).

Every problem raises :class:`~posestudio.core.errors.InputError` with one line naming the file and
the field (``studio.toml: [server] fps is -1; expected a positive number of frames per second``).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posestudio.core.errors import InputError
from posestudio.core.files import read_toml
from posestudio.core.frame_messages import camera_name_problem

log = logging.getLogger(__name__)

#: The detector names a config may ask for ("keypoints": nodes that send 2D keypoints; not served yet).
DETECTOR_NAMES = ("blazepose", "tce", "keypoints")
#: ``[server]`` defaults.
DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "data_port": 5560, "control_port": 5561, "skeleton_port": 5570,
                            "fps": 30.0, "join_fraction": 0.25, "max_wait_s": 0.1, "detector": "blazepose"}
_STUDIO_KEYS = {"name", "rig", "format_version"}
_CAMERA_KEYS = {"name", "clock", "node", "device", "size", "fps"}
_CLOCK = re.compile(r"^tcp://[^\s/:]+:\d{1,5}$")
_HOST = re.compile(r"^(\*|[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class CameraConfig:
    """One camera of the studio.

    Attributes:
        name: the camera's name, as in the rig and the frame topics.
        clock: the node's clock responder, ``tcp://HOST:PORT`` (None: the control channel
            registers it, or the node has none).
    """

    name: str
    clock: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and how it assembles frames (see the module docstring).

    Attributes:
        host: the interface to bind (``*`` for every one).
        data_port, control_port, skeleton_port: TCP ports; 0 binds a free one.
        fps: frame-set slots per second.
        join_fraction: how far from its slot a frame may lie and still join, a fraction of the period.
        max_wait_s: seconds after a slot's time when its set leaves with the cameras still missing.
        detector: the 2D detector's name (:data:`DETECTOR_NAMES`).
    """

    host: str = DEFAULTS["host"]
    data_port: int = DEFAULTS["data_port"]
    control_port: int = DEFAULTS["control_port"]
    skeleton_port: int = DEFAULTS["skeleton_port"]
    fps: float = DEFAULTS["fps"]
    join_fraction: float = DEFAULTS["join_fraction"]
    max_wait_s: float = DEFAULTS["max_wait_s"]
    detector: str = DEFAULTS["detector"]

    def bind_endpoint(self, port: int) -> str:
        """``tcp://HOST:PORT`` to bind, ``*`` for port 0 (any free port)."""
        return f"tcp://{self.host}:{port or '*'}"

    @property
    def data_endpoint(self) -> str:
        """Where the frame SUB socket binds."""
        return self.bind_endpoint(self.data_port)

    @property
    def skeleton_endpoint(self) -> str:
        """Where the skeleton PUB socket binds."""
        return self.bind_endpoint(self.skeleton_port)

    @property
    def control_endpoint(self) -> str:
        """Where the control ROUTER socket binds."""
        return self.bind_endpoint(self.control_port)


@dataclass(frozen=True)
class StudioConfig:
    """A studio configuration file, read and checked.

    Attributes:
        name: the studio's name.
        rig: the rig file, resolved against the config file's folder (not read here).
        server: :class:`ServerConfig`.
        cameras: the cameras, in the file's order (the order of every per-camera axis).
        path: the file read (None when built in code).
    """

    name: str
    rig: Path
    server: ServerConfig
    cameras: tuple[CameraConfig, ...]
    path: Path | None = None

    @property
    def camera_names(self) -> list[str]:
        """The cameras' names, in order."""
        return [c.name for c in self.cameras]

    @classmethod
    def load(cls, path: str | Path) -> StudioConfig:
        """Read and check a studio configuration file.

        Raises:
            InputError: a missing or invalid file, or a field out of range; one line naming the file
                and the field.
        """
        path = Path(path)
        doc = read_toml(path, InputError, "studio configuration file")
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], path: Path | None = None) -> StudioConfig:
        """A config from a parsed document (``path`` names it in errors and anchors the rig's path)."""
        where = str(path) if path is not None else "<studio config>"

        def fail(what: str) -> InputError:
            return InputError(f"{where}: {what}")

        studio = _table(doc, "studio", where, required=True)
        _warn_unknown(studio, _STUDIO_KEYS, "[studio]", where)
        name = studio.get("name", path.stem if path is not None else "studio")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"[studio] name is {name!r}; expected a non-empty string")
        rig = studio.get("rig")
        if not isinstance(rig, str) or not rig.strip():
            raise fail(f"[studio] rig is {rig!r}; expected the rig file's path (relative to this file), "
                       "e.g. rig = \"rig.toml\"")
        rig_path = Path(rig)
        if not rig_path.is_absolute() and path is not None:
            rig_path = path.parent / rig_path

        server = _table(doc, "server", where, required=False)
        _warn_unknown(server, set(DEFAULTS), "[server]", where)
        values = {**DEFAULTS, **{k: v for k, v in server.items() if k in DEFAULTS}}
        host = values["host"]
        if not isinstance(host, str) or not _HOST.match(host):
            raise fail(f"[server] host is {host!r}; expected a host name, an address or \"*\"")
        for key in ("data_port", "control_port", "skeleton_port"):
            port = values[key]
            if not _is_int(port) or not 0 <= port <= 65535:
                raise fail(f"[server] {key} is {port!r}; expected a TCP port from 1 to 65535 (0: any free port)")
        ports = [values[k] for k in ("data_port", "control_port", "skeleton_port") if values[k]]
        if len(set(ports)) != len(ports):
            raise fail(f"[server] data_port, control_port and skeleton_port are {ports}; expected three different "
                       "ports")
        fps = values["fps"]
        if not _is_number(fps) or not fps > 0:
            raise fail(f"[server] fps is {fps!r}; expected a positive number of frames per second")
        join = values["join_fraction"]
        if not _is_number(join) or not 0 < join <= 0.5:
            raise fail(f"[server] join_fraction is {join!r}; expected a fraction of a frame period in (0, 0.5]")
        wait = values["max_wait_s"]
        if not _is_number(wait) or not 0 <= wait <= 10:
            raise fail(f"[server] max_wait_s is {wait!r}; expected seconds from 0 to 10")
        detector = values["detector"]
        if detector not in DETECTOR_NAMES:
            raise fail(f"[server] detector is {detector!r}; expected one of {', '.join(DETECTOR_NAMES)}")
        server_config = ServerConfig(host, int(values["data_port"]), int(values["control_port"]),
                                     int(values["skeleton_port"]), float(fps), float(join), float(wait), detector)

        cameras_doc = doc.get("cameras")
        if not isinstance(cameras_doc, list) or not cameras_doc:
            raise fail("[[cameras]] is missing; expected at least one [[cameras]] table with a name")
        cameras = []
        for i, cam in enumerate(cameras_doc):
            label = f"[[cameras]] #{i + 1}"
            if not isinstance(cam, dict):
                raise fail(f"{label} is {type(cam).__name__}; expected a table")
            _warn_unknown(cam, _CAMERA_KEYS, label, where)
            cam_name = cam.get("name")
            problem = camera_name_problem(cam_name)
            if problem is not None:
                raise fail(f"{label} name {problem}")
            clock = cam.get("clock")
            if clock is not None and (not isinstance(clock, str) or not _CLOCK.match(clock)):
                raise fail(f"{label} ({cam_name}) clock is {clock!r}; expected the node's clock responder as "
                           "tcp://HOST:PORT")
            cameras.append(CameraConfig(cam_name, clock))
        names = [c.name for c in cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise fail(f"[[cameras]] names {dup} appear twice; expected each camera once")
        return cls(name.strip(), rig_path, server_config, tuple(cameras), path)


def _table(doc: dict[str, Any], key: str, where: str, required: bool) -> dict[str, Any]:
    value = doc.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        what = "missing" if value is None else f"a {type(value).__name__}"
        raise InputError(f"{where}: [{key}] is {what}; expected a [{key}] table")
    return value


def _warn_unknown(table: dict[str, Any], known: set[str], label: str, where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        log.warning("%s: %s has unknown keys %s (ignored); expected some of %s", where, label, unknown, sorted(known))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
