"""CURVE keys for the live studio: only nodes holding a key the studio issued can publish or control.

ZeroMQ's CURVE mechanism (CurveZMQ: Curve25519 keys, every message encrypted and authenticated) with
pyzmq's ZAP authenticator, as the pyzmq docs on ``zmq.auth`` describe it:

- The **server** (the frame SUB, the control ROUTER, any socket nodes connect to) is the CURVE server:
  :func:`server_socket_security` gives it the studio's secret key. It accepts a connection only when the
  peer proves it holds the secret of one of the public keys in the studio's ``authorized/`` folder: the
  :class:`StudioAuthenticator` (a ``zmq.auth.thread.ThreadAuthenticator``) started by
  :func:`start_authenticator` in the server's ZeroMQ context checks every handshake against that folder
  and logs each refusal (WARNING, logger ``posestudio.capture.keys``).
- A **node** is a CURVE client: :func:`client_socket_security` gives its socket the node's own keypair
  and the server's public key (so the node also knows it talks to the real server).

A node without keys (the NULL mechanism) fails the handshake before ZAP is asked: ZeroMQ refuses it
silently; :class:`HandshakeWatch` reads the server socket's monitor events and logs such refusals too.

The folder ``posestudio keys --out DIR --nodes NAME ...`` writes (secret files mode 0600)::

    DIR/server.key            the server's public key       (copy to every node)
    DIR/server.key_secret     the server's keypair          (stays on the server)
    DIR/nodes/NAME.key        node NAME's public key
    DIR/nodes/NAME.key_secret node NAME's keypair           (copy to that node only)
    DIR/authorized/NAME.key   the public keys the server accepts (delete one to revoke that node)

Security is on by default outside loopback: :func:`security_required` says whether an endpoint needs it,
and :func:`check_security` refuses to start a server or node on a non-loopback endpoint without keys
unless ``--insecure`` is given.

Order matters on the server: start the authenticator in a context **before** binding a CURVE server
socket in it. ZeroMQ lets every client with the server's public key in when no authenticator runs in the
context, so :func:`server_socket_security` refuses a context without one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from posestudio.core.closing import wake_address
from posestudio.core.errors import InputError, PoseStudioError

log = logging.getLogger(__name__)

#: File names inside a keys folder.
SERVER_NAME = "server"
NODES_DIR = "nodes"
AUTHORIZED_DIR = "authorized"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
#: A node's name: a safe file name (letters, digits, '.', '_', '-'; not starting with '.').
NODE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "lo", "ip6-localhost"}

# contexts in which a StudioAuthenticator runs (a CURVE server socket in any other context lets anyone in)
_guarded: weakref.WeakSet[zmq.Context] = weakref.WeakSet()
_guarded_lock = threading.Lock()


class KeysError(PoseStudioError):
    """Keys that cannot be used (missing, unreadable, not issued); the message names the file and what to do."""


# --------------------------------------------------------------------------- endpoints
def endpoint_host(endpoint: str) -> str | None:
    """The host part of a ``tcp://HOST:PORT`` (or ``ws://``, ``pgm://``...) endpoint; None for ipc/inproc."""
    text = endpoint.strip()
    scheme, _, rest = text.partition("://")
    if scheme in ("ipc", "inproc"):
        return None
    rest = rest.split(";")[-1]                  # tcp://SOURCE;HOST:PORT: the destination counts
    if rest.startswith("["):                    # [::1]:5560
        return rest[: rest.find("]") + 1] if "]" in rest else rest
    try:
        host = urlsplit(f"//{rest}").hostname   # lower-cased, port removed
    except ValueError:
        host = None
    return host if host is not None else rest.rsplit(":", 1)[0]


def security_required(endpoint: str) -> bool:
    """Whether ``endpoint`` needs CURVE keys: False on one machine (127.x.x.x, localhost, ::1, ipc://,
    inproc://), True otherwise (a LAN address, a host name, ``*`` meaning every interface)."""
    host = endpoint_host(endpoint)
    if host is None:
        return False
    host = host.lower()
    return not (host in _LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None)


def check_security(endpoint: str, have_keys: bool, insecure: bool, who: str = "the server",
                   keys_option: str = "--keys") -> None:
    """Refuse to run on a non-loopback ``endpoint`` without keys, unless ``insecure``.

    Raises:
        InputError: ``endpoint`` is not loopback, no keys were given and ``insecure`` is False; the message
            says how to make keys (``posestudio keys``) and how to go without.
    """
    if have_keys or insecure or not security_required(endpoint):
        return
    raise InputError(f"{who} would listen or connect on {endpoint}, which is not this machine: CURVE keys are "
                     f"required there; make them with 'posestudio keys --out DIR --nodes NAME ...' and give "
                     f"{keys_option} DIR, or pass --insecure to send unauthenticated, unencrypted traffic")


# --------------------------------------------------------------------------- key files
@dataclass(frozen=True)
class NodeKeys:
    """One node's CURVE keypair (Z85 text as bytes, 40 characters each); ``secret`` is None when only the
    public key is known."""

    name: str
    public: bytes
    secret: bytes | None = None


@dataclass(frozen=True)
class StudioKeys:
    """A keys folder (see the module docstring): whatever of it is present on this machine.

    Attributes:
        folder: the keys folder.
        server_public: the server's public key (None when ``server.key`` is absent).
        server_secret: the server's secret key (None away from the server).
        nodes: the node keypairs present under ``nodes/`` by name (public only where the secret is absent).
        authorized: the folder of public keys the server accepts.
    """

    folder: Path
    server_public: bytes | None
    server_secret: bytes | None
    nodes: dict[str, NodeKeys] = field(default_factory=dict)

    @property
    def authorized(self) -> Path:
        """``folder/authorized``: the node public keys the server accepts."""
        return self.folder / AUTHORIZED_DIR

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> StudioKeys:
        """Read a keys folder written by ``posestudio keys`` (or the part of it copied to a machine).

        Raises:
            KeysError: no such folder, a key file that cannot be read, or neither a server key nor a node key.
        """
        root = Path(folder)
        if not root.is_dir():
            raise KeysError(f"keys folder {root}: no such folder; expected one written by 'posestudio keys --out "
                            f"{root} --nodes NAME ...'")
        server_public = server_secret = None
        if (root / (SERVER_NAME + SECRET_SUFFIX)).is_file():
            server_public, server_secret = _load(root / (SERVER_NAME + SECRET_SUFFIX))
        elif (root / (SERVER_NAME + PUBLIC_SUFFIX)).is_file():
            server_public, _ = _load(root / (SERVER_NAME + PUBLIC_SUFFIX))
        nodes: dict[str, NodeKeys] = {}
        node_dir = root / NODES_DIR
        if node_dir.is_dir():
            for path in sorted(node_dir.iterdir()):
                if path.name.endswith(SECRET_SUFFIX):
                    name = path.name[: -len(SECRET_SUFFIX)]
                    public, secret = _load(path)
                    nodes[name] = NodeKeys(name, public, secret)
                elif path.name.endswith(PUBLIC_SUFFIX):
                    name = path.name[: -len(PUBLIC_SUFFIX)]
                    if name not in nodes and not (node_dir / (name + SECRET_SUFFIX)).is_file():
                        nodes[name] = NodeKeys(name, _load(path)[0])
        if server_public is None and not nodes:
            raise KeysError(f"keys folder {root}: no {SERVER_NAME}{PUBLIC_SUFFIX} and no {NODES_DIR}/*{SECRET_SUFFIX}; "
                            "expected a folder written by 'posestudio keys'")
        return cls(root, server_public, server_secret, nodes)

    def node(self, name: str) -> NodeKeys:
        """Node ``name``'s keypair.

        Raises:
            KeysError: no keypair of that name in this folder.
        """
        keys = self.nodes.get(name)
        if keys is None or keys.secret is None:
            have = ", ".join(n for n, k in self.nodes.items() if k.secret is not None) or "none"
            raise KeysError(f"keys folder {self.folder}: no keypair for node {name!r} ({NODES_DIR}/{name}{SECRET_SUFFIX}; "
                            f"keypairs here: {have}); expected 'posestudio keys --out {self.folder} --nodes {name}'")
        return keys

    def require_server(self) -> tuple[bytes, bytes]:
        """The server's ``(public, secret)`` keys.

        Raises:
            KeysError: this folder has no server secret key.
        """
        if self.server_public is None or self.server_secret is None:
            raise KeysError(f"keys folder {self.folder}: no {SERVER_NAME}{SECRET_SUFFIX}; expected the server's keypair "
                            "(it stays on the server machine)")
        return self.server_public, self.server_secret

    def require_server_public(self) -> bytes:
        """The server's public key (every node needs it).

        Raises:
            KeysError: this folder has no ``server.key``.
        """
        if self.server_public is None:
            raise KeysError(f"keys folder {self.folder}: no {SERVER_NAME}{PUBLIC_SUFFIX}; expected the server's public "
                            "key copied from the server's keys folder")
        return self.server_public


def _load(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path}: cannot read a CURVE key ({exc}); expected a file written by 'posestudio keys'") \
            from None
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise KeysError(f"{path}: a key is not 40 Z85 characters; expected a file written by 'posestudio keys'")
    return public, secret


def node_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a node's key files (None when it can)."""
    if not isinstance(name, str) or not NODE_NAME.fullmatch(name):
        return (f"{name!r} is not a usable node name; expected 1 to 128 letters, digits, '.', '_' or '-', not "
                "starting with '.'")
    return None


def write_studio_keys(folder: str | os.PathLike[str], nodes: list[str], force: bool = False) -> dict[str, list[Path]]:
    """Write the studio's keys into ``folder`` (created mode 0700 when absent).

    The server keypair is written when absent (kept when present, so new nodes can be added to a studio
    without re-keying the others); each node gets a keypair under ``nodes/`` and its public key in
    ``authorized/``. Secret files are mode 0600 from the start: each keypair is written in a private
    temporary folder and renamed into place.

    Returns:
        ``{"written": [...], "kept": [...]}``: the files written, and the existing server key files kept.
    Raises:
        InputError: a bad or repeated node name, or a node that already has keys (unless ``force``).
    """
    root = Path(folder)
    for name in nodes:
        problem = node_name_problem(name)
        if problem is not None:
            raise InputError(f"--nodes: {problem}")
        if name == SERVER_NAME:
            raise InputError(f"--nodes: {name!r} is the server's key name; expected another node name")
    if len(set(nodes)) != len(nodes):
        raise InputError(f"--nodes names {sorted({n for n in nodes if nodes.count(n) > 1})} twice; expected unique names")
    if not force:
        existing = [n for n in nodes if (root / NODES_DIR / (n + SECRET_SUFFIX)).exists()]
        if existing:
            raise InputError(f"{root / NODES_DIR}: keys for {', '.join(existing)} exist already; expected new node "
                             "names, or --force to replace them (the old keys stop working)")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub, mode in ((NODES_DIR, 0o700), (AUTHORIZED_DIR, 0o755)):
        (root / sub).mkdir(mode=mode, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []
    server_secret = root / (SERVER_NAME + SECRET_SUFFIX)
    if server_secret.exists() and (root / (SERVER_NAME + PUBLIC_SUFFIX)).exists():
        kept += [root / (SERVER_NAME + PUBLIC_SUFFIX), server_secret]
    else:
        written += _new_keypair(root, SERVER_NAME)
    for name in nodes:
        public, secret = _new_keypair(root / NODES_DIR, name)
        authorized = root / AUTHORIZED_DIR / (name + PUBLIC_SUFFIX)
        tmp = authorized.with_name(f".{authorized.name}.tmp")
        shutil.copyfile(public, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, authorized)
        written += [public, secret, authorized]
    return {"written": written, "kept": kept}


def _new_keypair(folder: Path, name: str) -> list[Path]:
    """A new keypair ``folder/name.key`` (0644) and ``folder/name.key_secret`` (0600), written privately."""
    private = Path(tempfile.mkdtemp(prefix=".keys-", dir=folder))   # mode 0700: nobody else can look in
    try:
        public_tmp, secret_tmp = zmq.auth.create_certificates(private, name)
        os.chmod(secret_tmp, 0o600)
        os.chmod(public_tmp, 0o644)
        public, secret = folder / (name + PUBLIC_SUFFIX), folder / (name + SECRET_SUFFIX)
        os.replace(secret_tmp, secret)
        os.replace(public_tmp, public)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return [public, secret]


# --------------------------------------------------------------------------- sockets
def server_socket_security(socket: zmq.Socket, keys: StudioKeys) -> None:
    """Make ``socket`` a CURVE server with the studio's keypair (call before it binds).

    Raises:
        KeysError: no server secret key in ``keys``, or no :func:`start_authenticator` running in the socket's
            context (without one ZeroMQ would accept any client that knows the server's public key).
    """
    public, secret = keys.require_server()
    with _guarded_lock:
        guarded = socket.context in _guarded
    if not guarded:
        raise KeysError("a CURVE server socket in a ZeroMQ context without the studio's authenticator would accept "
                        "any client; expected start_authenticator(context, keys) before the socket is secured")
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True


def client_socket_security(socket: zmq.Socket, node_keys: NodeKeys, server_public: bytes) -> None:
    """Make ``socket`` a CURVE client with the node's keypair, talking only to the server holding
    ``server_public`` (call before it connects).

    Raises:
        KeysError: ``node_keys`` has no secret key.
    """
    if node_keys.secret is None:
        raise KeysError(f"node {node_keys.name!r}: only the public key is here; expected its keypair "
                        f"({NODES_DIR}/{node_keys.name}{SECRET_SUFFIX})")
    socket.curve_secretkey = node_keys.secret
    socket.curve_publickey = node_keys.public
    socket.curve_serverkey = server_public


class StudioAuthenticator(ThreadAuthenticator):
    """pyzmq's thread authenticator, which also logs each refused key (WARNING) and counts refusals.

    Attributes:
        refused: CURVE handshakes refused (keys not in the authorized folder). allowed: handshakes let in.
    """

    def __init__(self, context: zmq.Context | None = None) -> None:
        super().__init__(context=context, log=logging.getLogger("zmq.auth"))
        self.refused = 0
        self.allowed = 0

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
        allowed, reason = await super()._authenticate_curve(domain, client_key)
        if allowed:
            self.allowed += 1
        else:
            self.refused += 1
            log.warning("CURVE: refused a connection with key %s: %s (not in the studio's authorized keys)",
                        zmq.utils.z85.encode(client_key).decode(), reason.decode(errors="replace"))
        return allowed, reason

    def stop(self) -> None:
        """Stop the authentication thread (and stop guarding its context)."""
        with _guarded_lock:
            _guarded.discard(self.context)
        super().stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_authenticator(context: zmq.Context, keys: StudioKeys) -> StudioAuthenticator:
    """Start ZAP authentication in ``context``: CURVE clients are let in only with a key in ``keys.authorized``.

    One per context (ZeroMQ's ZAP endpoint is per context); stop it (``stop()``) when the sockets close.
    A key deleted from or added to the folder counts after ``configure_curve`` is called again.

    Raises:
        KeysError: no ``authorized/`` folder, or an authenticator already running in ``context``.
    """
    if not keys.authorized.is_dir():
        raise KeysError(f"keys folder {keys.folder}: no {AUTHORIZED_DIR}/ folder; expected the node public keys the "
                        "server accepts ('posestudio keys' writes it)")
    with _guarded_lock:
        if context in _guarded:
            raise KeysError("an authenticator already runs in this ZeroMQ context (one per context); expected one "
                            "start_authenticator per context, stopped before another starts")
    auth = StudioAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized))
    with _guarded_lock:
        _guarded.add(context)
    return auth


# --------------------------------------------------------------------------- refusals ZAP never sees
_FAILURES = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no CURVE key, or another security mechanism",
             zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "a broken handshake",
             zmq.EVENT_HANDSHAKE_FAILED_AUTH: "a key the studio did not issue"}


class HandshakeWatch:
    """Logs (WARNING) and counts the failed security handshakes on a socket, read from its monitor events.

    A node without keys never reaches the authenticator (its NULL mechanism does not match CURVE), so ZeroMQ
    drops it silently; this makes such refusals visible. Create it on the socket's own thread (it calls the
    socket's ``monitor``); its thread reads the events until :meth:`stop`.

    Attributes:
        failures: failed handshakes by kind (``"no key"``, ``"protocol"``, ``"auth"``).
    """

    def __init__(self, socket: zmq.Socket, name: str = "socket") -> None:
        self.name = name
        self.failures = {"no key": 0, "protocol": 0, "auth": 0}
        events = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | \
            zmq.EVENT_HANDSHAKE_FAILED_AUTH
        self._monitor = socket.get_monitor_socket(events)
        context = socket.context
        self._wake_address = wake_address("handshake-watch")
        self._wake_in = context.socket(zmq.PAIR)
        self._wake_in.bind(self._wake_address)
        self._wake_out = context.socket(zmq.PAIR)
        self._wake_out.connect(self._wake_address)
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name=f"handshake-watch-{name}",
                                                                 daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._monitor, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        kinds = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no key", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol",
                 zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth"}
        while True:
            ready = dict(poller.poll())
            if self._wake_in in ready:
                return
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except (zmq.Again, ValueError):
                continue
            except zmq.ZMQError:   # the monitored socket closed
                return
            kind = kinds.get(event["event"])
            if kind is None:
                if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                    return
                continue
            self.failures[kind] += 1
            log.warning("%s on %s: refused a connection: %s", self.name, event["endpoint"].decode(errors="replace"),
                        _FAILURES[event["event"]])

    @property
    def refused(self) -> int:
        """All failed handshakes."""
        return sum(self.failures.values())

    def stop(self) -> None:
        """Stop reading events and close the monitor sockets; safe to call twice."""
        if self._thread is not None:
            self._wake_out.send(b"stop")
            self._thread.join(timeout=5.0)
            self._thread = None
            for s in (self._wake_out, self._wake_in, self._monitor):
                s.close(linger=0)
