"""One running overlay per user session.

The first copy listens on a local socket (``QLocalServer``: a Unix socket in the user's runtime
folder, a named pipe on Windows). A second launch connects, hands over what its command line
asked for and exits: the running copy shows its overlay and applies the options. A second
overlay would be stacked on the first, run a second recognizer (double CPU, or double billing)
and write a second transcript.

The message is one JSON line, at most ``MAX_MESSAGE`` bytes: ``{"show": true, "overrides": {...}}``.
Only the user themself can connect (``UserAccessOption``); anything malformed is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QLockFile, QObject, QThread, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app import APP_ID

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
CONNECT_TIMEOUT_MS = 1500
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
    return os.path.join(folder, f"{name}.sock")


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


def hand_over(overrides: dict[str, Any], name: str | None = None) -> bool:
    """Give the command line to a running copy. True when one took it (this copy should exit)."""
    sock = QLocalSocket()
    sock.connectToServer(name or server_name())
    if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    try:
        sock.write(encode_message(overrides))
        sock.flush()
        sock.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        got = b""
        while REPLY not in got and sock.waitForReadyRead(CONNECT_TIMEOUT_MS):
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
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}
        lock_path = self.name + ".lock" if os.path.isabs(self.name) else \
            os.path.join(tempfile.gettempdir(), self.name + ".lock")
        self._lock = QLockFile(lock_path)
        self._lock.setStaleLockTime(0)         # only a dead owner makes a lock stale, never age

    def listen(self) -> bool:
        """Become the running copy. False when another live copy already is.

        A lock file decides (Qt's replaces a stale lock, one whose process is gone): with
        socket options set, ``QLocalServer.listen`` would silently replace a live copy's socket.
        """
        if not self._lock.tryLock(0):
            return False
        QLocalServer.removeServer(self.name)   # left by a copy that crashed
        if self._server.listen(self.name):
            return True
        log.warning("could not listen for a second launch: %s", self._server.errorString())
        return True   # still the only copy (the lock says so); later launches will start anyway

    def close(self) -> None:
        self._server.close()
        self._lock.unlock()

    def _on_connection(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            self._buffers[sock] = b""
            sock.readyRead.connect(lambda s=sock: self._on_ready(s))
            sock.disconnected.connect(lambda s=sock: self._forget(s))

    def _on_ready(self, sock: QLocalSocket) -> None:
        data = self._buffers.get(sock, b"") + bytes(sock.readAll())
        if len(data) > MAX_MESSAGE:
            log.warning("ignored an oversized message from a second launch")
            sock.abort()
            self._forget(sock)
            return
        self._buffers[sock] = data
        if b"\n" not in data:
            return
        line = data.split(b"\n", 1)[0]
        overrides = decode_message(line, self._allowed)
        sock.write(REPLY)
        sock.flush()
        sock.disconnectFromServer()
        if overrides is None:
            log.warning("ignored a malformed message from a second launch")
            overrides = {}
        self.activated.emit(overrides)

    def _forget(self, sock: QLocalSocket) -> None:
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
