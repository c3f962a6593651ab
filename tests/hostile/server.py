"""Misbehaving peers on 127.0.0.1: each ``HostileServer`` runs one scripted behaviour per
connection and records every byte it receives, so a test can prove where the key went.

Every behaviour stops by itself (``MAX_CASE_S``) or when the client hangs up; ``close()`` ends
all of them. No traffic ever leaves the loopback interface.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
import time
from typing import Callable

MAX_CASE_S = 20.0          # no behaviour runs longer than this
KEY = "hostile-test-KEY-5f2b9c0d1e"   # passes the typed-key checks: it reaches the wire
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Behaviour = Callable[["Conn"], None]


class Conn:
    """One accepted connection: the request head (already read) and helpers to answer."""

    def __init__(self, server: "HostileServer", sock: socket.socket, head: bytes, body: bytes):
        self.server = server
        self.sock = sock
        self.head = head
        self.body = body
        self.started = time.monotonic()

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def method(self) -> str:
        return self.request_line.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request_line.split(" ")[1]

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def expired(self) -> bool:
        return time.monotonic() - self.started > MAX_CASE_S or self.server.closing.is_set()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def http(self, status: int, body: bytes | dict | str = b"", headers: dict | None = None) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def accept_websocket(self) -> None:
        key = self.header("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())

    def ws_text(self, obj, *, fin: bool = True, opcode: int = 1) -> bool:
        data = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
        return self.send(ws_header(len(data), opcode=opcode, fin=fin) + data)

    def drain(self, seconds: float) -> None:
        """Keep reading (and recording) what the client sends, for at most ``seconds``."""
        end = time.monotonic() + seconds
        self.sock.settimeout(0.1)
        while time.monotonic() < end and not self.expired():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.server.record(data)


def tunnel_then(behaviour: Behaviour) -> Behaviour:
    """An HTTP proxy: answers CONNECT with 200, then runs ``behaviour`` inside the tunnel as
    if it were the target server (the CONNECT lines are kept in ``server.tunnels``)."""
    def behave(conn: Conn) -> None:
        conn.server.tunnels.append(conn.request_line)
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        buf = bytearray()
        conn.sock.settimeout(5.0)
        while b"\r\n\r\n" not in buf:
            data = conn.sock.recv(65536)
            if not data:
                return
            conn.server.record(data)
            buf += data
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        behaviour(Conn(conn.server, conn.sock, head, rest))
    return behave


def ws_header(length: int, *, opcode: int = 1, fin: bool = True) -> bytes:
    """A server frame header announcing ``length`` bytes (servers do not mask)."""
    b0 = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([b0, length])
    if length < 1 << 16:
        return bytes([b0, 126]) + length.to_bytes(2, "big")
    return bytes([b0, 127]) + length.to_bytes(8, "big")


class HostileServer:
    """``behaviour(conn)`` answers each connection; ``received`` holds everything clients sent."""

    def __init__(self, behaviour: Behaviour, *, tls: tuple | None = None) -> None:
        self.behaviour = behaviour
        self._received = bytearray()
        self._lock = threading.Lock()
        self.connections = 0
        self.tunnels: list[str] = []     # CONNECT request lines, when used as a proxy
        self.closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._tls = None
        if tls:
            cert, key = tls
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(str(cert), str(key))
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True, name="hostile-accept")
        self._accept.start()

    # ---- what the clients sent ---------------------------------------------------------------
    def record(self, data: bytes) -> None:
        with self._lock:
            self._received += data

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def saw(self, secret: str) -> bool:
        return secret.encode() in self.received

    # ---- serving -----------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._one, args=(sock,), daemon=True, name="hostile-conn")
            self._threads.append(t)
            t.start()

    def _one(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5.0)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
            head, body = self._read_request(sock)
            if head is None:
                return
            self.behaviour(Conn(self, sock, head, body))
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, sock) -> tuple[bytes | None, bytes]:
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                self.record(bytes(buf))
                return None, b""
            buf += data
            if len(buf) > 1 << 20:
                return None, b""
        self.record(bytes(buf))
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = min(int(value.strip() or 0), 1 << 20)
        body = bytearray(rest)
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                break
            self.record(data)
            body += data
        return head, bytes(body)

    def close(self) -> None:
        self.closing.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self._accept.join(timeout=2)
        for t in self._threads:
            t.join(timeout=2)


class MemoryWatch:
    """Peak growth of this process's resident memory while inside the ``with`` block."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil
        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.base = self.peak = self._proc.memory_info().rss

    def __enter__(self) -> "MemoryWatch":
        self._thread = threading.Thread(target=self._run, daemon=True, name="memory-watch")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1e6
