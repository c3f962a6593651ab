"""A small WebSocket transport interface and its websocket-client implementation.

The clients speak only to ``Transport``, so tests can substitute a scripted fake. One thread may
``recv()`` while another sends (websocket-client locks sends with ``enable_multithread``).
"""

from __future__ import annotations

import abc
import socket
import ssl
from dataclasses import dataclass

import websocket

from app.core.streaming.urls import redact_url


@dataclass(frozen=True)
class Incoming:
    kind: str                    # "text" | "binary" | "close" | "pong"
    data: str | bytes = b""
    code: int | None = None      # close frames only
    reason: str | None = None


class HandshakeRejected(Exception):
    """The server answered the WebSocket upgrade with an HTTP error status."""

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__(f"WebSocket handshake rejected (HTTP {status})")
        self.status = status
        self.body = body


class ConnectFailed(Exception):
    """No connection (refused, unreachable, DNS, TLS, timeout). The message is plain words."""


class TransportClosed(Exception):
    """The connection broke while in use (no close frame)."""


class Transport(abc.ABC):
    @abc.abstractmethod
    def connect(self, url: str, headers: dict, timeout: float) -> None: ...

    @abc.abstractmethod
    def send_text(self, text: str) -> None: ...

    @abc.abstractmethod
    def send_binary(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def ping(self) -> None: ...

    @abc.abstractmethod
    def recv(self) -> Incoming | None:
        """Next message; ``None`` when nothing arrived within the I/O timeout. Raises TransportClosed."""

    @abc.abstractmethod
    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and release the socket; unblocks ``recv``."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the connection at once; unblocks ``recv``."""


def ca_bundle() -> str | None:
    """certifi's CA file when installed (frozen macOS builds have no usable system store for
    OpenSSL); otherwise None and the system's certificates are used."""
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def _plain(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError, websocket.WebSocketTimeoutException)):
        return "timed out"
    if isinstance(exc, (socket.gaierror, websocket.WebSocketAddressException)):
        return "host name not found"
    if isinstance(exc, ssl.SSLError):
        return "secure connection failed"
    text = str(exc).strip()
    return text[:120] if text else type(exc).__name__


class WebSocketTransport(Transport):
    """websocket-client, blocking I/O with a timeout; pings answered automatically."""

    def __init__(self, io_timeout: float = 10.0) -> None:
        self.io_timeout = io_timeout
        self._ws: websocket.WebSocket | None = None

    def connect(self, url, headers, timeout):
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        header = [f"{k}: {v}" for k, v in headers.items()]
        options = {}
        ca_file = ca_bundle()
        if ca_file:
            options["sslopt"] = {"ca_certs": ca_file}
        try:
            ws.connect(url, header=header, timeout=timeout, suppress_origin=True, **options)
        except websocket.WebSocketBadStatusException as exc:
            body = exc.resp_body.decode("utf-8", "replace")[:300] if exc.resp_body else ""
            raise HandshakeRejected(exc.status_code, body) from None
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectFailed(f"Could not connect to {_host(url)} ({_plain(exc)})") from None
        ws.settimeout(self.io_timeout)
        self._ws = ws

    def send_text(self, text):
        self._send(text, websocket.ABNF.OPCODE_TEXT)

    def send_binary(self, data):
        self._send(data, websocket.ABNF.OPCODE_BINARY)

    def ping(self):
        self._send(b"", websocket.ABNF.OPCODE_PING)

    def _send(self, payload, opcode):
        ws = self._ws
        if ws is None or not ws.connected:
            raise TransportClosed("not connected")
        try:
            ws.send(payload, opcode=opcode)
        except (websocket.WebSocketException, OSError) as exc:
            raise TransportClosed(_plain(exc)) from None

    def recv(self):
        ws = self._ws
        if ws is None:
            raise TransportClosed("not connected")
        abnf = websocket.ABNF
        try:
            while True:
                frame = ws.recv_frame()
                op = frame.opcode
                if op in (abnf.OPCODE_TEXT, abnf.OPCODE_BINARY, abnf.OPCODE_CONT):
                    ws.cont_frame.validate(frame)
                    ws.cont_frame.add(frame)
                    if not ws.cont_frame.is_fire(frame):
                        continue
                    op, frame = ws.cont_frame.extract(frame)
                    data = frame.data
                    if op == abnf.OPCODE_TEXT:
                        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                        return Incoming("text", text)
                    return Incoming("binary", bytes(data))
                if op == abnf.OPCODE_CLOSE:
                    data = frame.data or b""
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    reason = data[2:].decode("utf-8", "replace") if len(data) > 2 else None
                    try:  # answer the close; the peer may already be gone
                        ws.send_close()
                    except (websocket.WebSocketException, OSError):
                        pass
                    return Incoming("close", code=code, reason=reason or None)
                if op == abnf.OPCODE_PING:
                    try:
                        ws.pong(frame.data)
                    except (websocket.WebSocketException, OSError):
                        pass
                    continue
                if op == abnf.OPCODE_PONG:
                    return Incoming("pong")
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketException, OSError, AttributeError, ValueError) as exc:
            # AttributeError: websocket-client's socket is None after a concurrent close.
            raise TransportClosed(_plain(exc)) from None

    def close(self, code=1000):
        ws = self._ws
        if ws is None:
            return
        try:
            if ws.connected:
                ws.send_close(status=code)
        except (websocket.WebSocketException, OSError):
            pass
        self.abort()

    def abort(self):
        ws = self._ws
        if ws is None:
            return
        sock = ws.sock
        if sock is not None:
            try:  # shutdown (not just close) wakes a thread blocked in recv on Linux
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            ws.shutdown()
        except (websocket.WebSocketException, OSError, AttributeError):
            pass


def _host(url: str) -> str:
    return redact_url(url).split("?", 1)[0]
