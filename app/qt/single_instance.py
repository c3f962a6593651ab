"""One running overlay per user session.

The first copy listens on a local socket: a Unix socket in the user's runtime folder (Linux,
macOS), a named pipe on Windows (``QLocalServer``). A second launch connects, hands over what its
command line asked for and exits: the running copy shows its overlay and applies the options. A
second overlay would be stacked on the first, run a second recognizer (double CPU, or double
billing) and write a second transcript.

The message is one JSON line, at most ``MAX_MESSAGE`` bytes: ``{"show": true, "overrides": {...}}``.
Only the user themself can connect (the socket file is 0600; the pipe has ``UserAccessOption``);
anything malformed is ignored. The Unix socket is Python's own, watched by a ``QSocketNotifier`` on
the GUI thread, so Linux and macOS bundles need no QtNetwork (2 MB plus the Kerberos libraries it
links).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QLockFile, QObject, QSocketNotifier, QThread, Signal

from app import APP_ID

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
MAX_SOCKET_PATH = 100                # under the smallest sun_path (macOS: 104 bytes)
CONNECT_TIMEOUT_MS = 1500
# A copy that took the connection answers once its event loop runs; a copy that is still starting
# on a busy computer can take seconds to get there, and a second overlay would be worse.
REPLY_TIMEOUT_MS = 10_000
REPLY = b"ok\n"


def server_name() -> str:
    """Per user and per settings folder: a test or a portable copy with its own settings is its own app."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    digest = hashlib.sha256(f"{user}\0{config}".encode()).hexdigest()[:12]
    name = f"{APP_ID}-{digest}"
    if os.name == "nt":
        return name                      # a named pipe; the name is the whole address
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()
    path = os.path.join(folder, f"{name}.sock")
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    # A socket's address has a size limit (104 bytes on macOS, 108 on Linux): a deep runtime folder
    # gets a private folder of ours in the temporary folder instead.
    private = _private_folder(os.path.join(tempfile.gettempdir(), f"{APP_ID}-{user}"))
    return os.path.join(private, f"{digest}.sock") if private else path


def _private_folder(path: str) -> str | None:
    """``path`` as a folder only this user can enter, made if missing; None if someone else's."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning("%s is not a private folder of this user: no single-instance hand-over", path)
        return None
    return path


def encode_message(overrides: dict[str, Any]) -> bytes:
    clean = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    data = json.dumps({"show": True, "overrides": clean}, ensure_ascii=True).encode() + b"\n"
    if len(data) > MAX_MESSAGE:
        raise ValueError("The command line is too long to hand to the running copy.")
    return data


def decode_message(data: bytes, allowed: set[str]) -> dict[str, Any] | None:
    """The overrides a second launch asked for, keeping only known options; None if malformed."""
    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("overrides", {}), dict):
        return None
    out: dict[str, Any] = {}
    for key, value in message.get("overrides", {}).items():
        if key not in allowed:
            continue
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                continue
            value = tuple(value)
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            continue
        out[key] = value
    return out


def _ours(path: str) -> bool:
    """In a shared temporary folder another account could have made this path: only a socket of
    our own gets the command line."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return False                     # nothing there: no running copy
    if owner != os.getuid():
        log.warning("%s belongs to another user: not handing over to it", path)
        return False
    return True


def hand_over(overrides: dict[str, Any], name: str | None = None) -> bool:
    """Give the command line to a running copy. True when one took it (this copy should exit)."""
    name = name or server_name()
    if os.name == "nt":
        return _hand_over_pipe(encode_message(overrides), name)
    message = encode_message(overrides)
    if not _ours(name):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT_MS / 1000)
        try:
            sock.connect(name)
            sock.sendall(message)
            sock.settimeout(REPLY_TIMEOUT_MS / 1000)
            got = b""
            while REPLY not in got and len(got) < len(REPLY):
                chunk = sock.recv(64)
                if not chunk:
                    break
                got += chunk
        except OSError:                  # nobody listening, or it went away mid-way
            return False
        return REPLY in got


def _hand_over_pipe(message: bytes, name: str) -> bool:
    from PySide6.QtNetwork import QLocalSocket

    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    try:
        sock.write(message)
        sock.flush()
        sock.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        got = b""
        while REPLY not in got and sock.waitForReadyRead(REPLY_TIMEOUT_MS):
            got += bytes(sock.readAll())
        return REPLY in got
    finally:
        sock.disconnectFromServer()


class InstanceServer(QObject):
    """The running copy's end. ``activated(overrides)`` fires on the GUI thread, from the event loop."""

    activated = Signal(object)

    def __init__(self, allowed: set[str], name: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self._allowed = set(allowed)
        self._transport = _PipeServer(self._on_line) if os.name == "nt" else _UnixServer(self._on_line)
        lock_path = self.name + ".lock" if os.path.isabs(self.name) else \
            os.path.join(tempfile.gettempdir(), self.name + ".lock")
        self._lock = QLockFile(lock_path)
        self._lock.setStaleLockTime(0)         # only a dead owner makes a lock stale, never age

    def listen(self) -> bool:
        """Become the running copy. False when another live copy already is.

        A lock file decides (Qt's replaces a stale lock, one whose process is gone), so a second
        copy never replaces a live copy's socket.
        """
        if not self._lock.tryLock(0):
            return False
        try:
            self._transport.listen(self.name)
        except OSError as exc:
            log.warning("could not listen for a second launch: %s", exc)
        return True   # the only copy either way (the lock says so); later launches start anyway

    def close(self) -> None:
        self._transport.close()
        self._lock.unlock()

    def _on_line(self, line: bytes) -> None:
        overrides = decode_message(line, self._allowed)
        if overrides is None:
            log.warning("ignored a malformed message from a second launch")
            overrides = {}
        self.activated.emit(overrides)


class _UnixServer:
    """A non-blocking Unix socket served from the GUI thread's event loop."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._on_line = on_line
        self._sock: socket.socket | None = None
        self._notifier: QSocketNotifier | None = None
        self._clients: dict[socket.socket, list] = {}      # socket → [bytes so far, notifier]
        self._path = ""

    def listen(self, path: str) -> None:
        try:
            os.unlink(path)                    # left by a copy that crashed
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)              # before listen(): nobody else can connect meanwhile
            sock.listen(8)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock, self._path = sock, path
        self._notifier = QSocketNotifier(sock.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._accept)

    def _accept(self, *_args) -> None:
        while self._sock is not None:
            try:
                client, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("could not accept a second launch: %s", exc)
                return
            client.setblocking(False)
            notifier = QSocketNotifier(client.fileno(), QSocketNotifier.Type.Read)
            self._clients[client] = [b"", notifier]
            notifier.activated.connect(lambda *_a, c=client: self._read(c))

    def _read(self, client: socket.socket) -> None:
        entry = self._clients.get(client)
        if entry is None:
            return
        try:
            chunk = client.recv(MAX_MESSAGE + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:                          # gone before sending a whole line
            self._drop(client)
            return
        data = entry[0] + chunk
        if len(data) > MAX_MESSAGE:
            log.warning("ignored an oversized message from a second launch")
            self._drop(client)
            return
        entry[0] = data
        if b"\n" not in data:
            return
        try:
            client.send(REPLY)
        except OSError:
            pass                               # it stopped waiting; the options still apply
        self._drop(client)
        self._on_line(data.split(b"\n", 1)[0])

    def _drop(self, client: socket.socket) -> None:
        entry = self._clients.pop(client, None)
        if entry is not None:
            entry[1].setEnabled(False)
            entry[1].deleteLater()
        client.close()

    def close(self) -> None:
        for client in list(self._clients):
            self._drop(client)
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                os.unlink(self._path)
            except OSError:
                pass


class _PipeServer:
    """Windows: a named pipe through QLocalServer (Python's socket module has no AF_UNIX there)."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        from PySide6.QtNetwork import QLocalServer

        self._on_line = on_line
        self._server = QLocalServer()
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)
        self._buffers: dict = {}

    def listen(self, name: str) -> None:
        self._server.removeServer(name)       # left by a copy that crashed
        if not self._server.listen(name):
            raise OSError(self._server.errorString())

    def close(self) -> None:
        self._server.close()

    def _on_connection(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            self._buffers[sock] = b""
            sock.readyRead.connect(lambda s=sock: self._on_ready(s))
            sock.disconnected.connect(lambda s=sock: self._forget(s))

    def _on_ready(self, sock) -> None:
        data = self._buffers.get(sock, b"") + bytes(sock.readAll())
        if len(data) > MAX_MESSAGE:
            log.warning("ignored an oversized message from a second launch")
            sock.abort()
            self._forget(sock)
            return
        self._buffers[sock] = data
        if b"\n" not in data:
            return
        sock.write(REPLY)
        sock.flush()
        sock.disconnectFromServer()
        self._on_line(data.split(b"\n", 1)[0])

    def _forget(self, sock) -> None:
        self._buffers.pop(sock, None)
        sock.deleteLater()


def become_single(overrides: dict[str, Any], allowed: set[str],
                  report: Callable[[str], None] = lambda _m: None,
                  name: str | None = None) -> InstanceServer | None:
    """The server if this is the first copy; None after handing over to the copy already running."""
    server = InstanceServer(allowed, name=name)
    if server.listen():
        return server
    # Another copy holds the lock; it may still be starting up and not listening yet.
    for _ in range(6):
        if hand_over(overrides, server.name):
            report("Caption Overlay is already running: its captions were brought to the front.")
            return None
        QThread.msleep(250)
    report("Another copy of Caption Overlay seems to be running but does not answer; starting anyway.")
    return server
