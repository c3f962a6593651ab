"""A small WebSocket transport interface and its implementation over a plain socket.

The clients speak only to ``Transport``, so tests can substitute a scripted fake. One thread may
``recv()`` while another sends (sends are serialised by a lock).

The implementation is deliberately strict with the peer: the connection never follows a
redirect (the Authorization header would go to a host the user did not configure), the
handshake answer and every frame are size-capped before anything is allocated, the whole
connect has one deadline, and error texts are fixed phrases that never quote the peer or the
request (a header holding the key must not leak through an exception message).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading

try:
    import fcntl      # POSIX; the room check that needs it is Linux only
except ImportError:   # pragma: no cover - Windows
    fcntl = None
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.events import Recovery
from app.core.streaming.deadline import Deadline, open_socket
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


class ServerFault(Exception):
    """The peer broke the protocol (oversized frame or handshake, a redirect, bad framing).

    The message is plain words for the user; ``recovery`` says whether retrying can help.
    """

    def __init__(self, message: str, recovery: Recovery = Recovery.RECONNECT) -> None:
        super().__init__(message)
        self.recovery = recovery


class Transport(abc.ABC):
    @abc.abstractmethod
    def connect(self, url: str, headers: dict, timeout: float) -> None: ...

    @abc.abstractmethod
    def send_text(self, text: str) -> None: ...

    @abc.abstractmethod
    def send_binary(self, data: bytes) -> None: ...

    def try_send_binary(self, data: bytes) -> bool:
        """Send now only if that cannot wait on the network (the socket has room and no other
        send is under way); False: nothing was sent, queue it. Raises TransportClosed."""
        return False

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


MAX_MESSAGE_BYTES = 4 * 1024 * 1024   # the largest server message we accept (real ones are < 64 KiB)
MAX_HANDSHAKE_BYTES = 16 * 1024      # status line and headers of the upgrade answer
MAX_HANDSHAKE_LINES = 100
MAX_ERROR_BODY = 4096                 # body of a refused handshake, for the error message
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MiB = 1024 * 1024


def ca_bundle() -> str | None:
    """certifi's CA file when installed (frozen macOS builds have no usable system store for
    OpenSSL); otherwise None and the system's certificates are used."""
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def tls_context() -> ssl.SSLContext:
    """Certificate and host-name verification always on."""
    return ssl.create_default_context(cafile=ca_bundle())


def _plain(exc: BaseException) -> str:
    """A fixed phrase per failure kind: exception texts can quote the request, so none is shown."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the server's certificate could not be verified"
    if isinstance(exc, ssl.SSLError):
        return "secure connection failed"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, (ConnectionAbortedError, BrokenPipeError)):
        return "connection closed"
    if isinstance(exc, OSError):
        return "network error"
    return "connection failed"


def _mask(key: bytes, data: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (clients must mask everything they send)."""
    n = len(payload)
    head = bytearray([0x80 | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    key = os.urandom(4)
    return bytes(head) + key + _mask(key, payload)


def _clean_header(name: str, value: str) -> str:
    """Refuse CR/LF/NUL in a request header; the text never repeats the value (it may be the key)."""
    if any(ch in name + value for ch in "\r\n\0") or ":" in name:
        raise ValueError(f"The {name.split(':')[0][:40] or 'request'} header contains a line break "
                         "or a character that cannot be sent; check the API key in Settings.")
    return f"{name}: {value}"


OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_TIOCOUTQ = 0x5411     # Linux: bytes in a socket's send queue (SIOCOUTQ)
_TLS_SLACK = 1024      # a TLS record's framing and padding, generously


def send_buffer_size(sock) -> int:
    """The socket's send buffer, or 0 where the room check cannot be made (then every frame is
    queued). Read once per connection: Linux only grows it as the connection goes on."""
    if fcntl is None or not sys.platform.startswith("linux"):
        return 0
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    except (OSError, ValueError):
        return 0


def _has_room(sock, size: int, buffer: int | None = None) -> bool:
    """Would ``sendall`` of ``size`` bytes return without waiting? Known on Linux only: the
    send queue plus this frame stay within a quarter of the send buffer (the kernel's own
    accounting adds overhead, so the margin is wide). Elsewhere: no, queue it."""
    buffer = send_buffer_size(sock) if buffer is None else buffer
    if not buffer:
        return False
    try:
        queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return False
    return queued + size + _TLS_SLACK <= buffer // 4


class WebSocketTransport(Transport):
    """RFC 6455 client over a blocking socket with a timeout; pings answered automatically."""

    def __init__(self, io_timeout: float = 10.0, *, max_message: int = MAX_MESSAGE_BYTES,
                 max_handshake: int = MAX_HANDSHAKE_BYTES) -> None:
        self.io_timeout = io_timeout
        self.max_message = max_message
        self.max_handshake = max_handshake
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._send_buffer: int | None = None    # SO_SNDBUF, read at the first try_send_binary
        self._rx = bytearray()
        self._parts: list[bytes] = []       # fragments of the message being received
        self._parts_size = 0
        self._parts_op: int | None = None
        self._closed = False                # abort() was called (maybe during connect)
        self._timed_out = False             # the connect deadline passed
        self.connected = False

    # ---- connect -----------------------------------------------------------------------------
    def connect(self, url, headers, timeout):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss"):
            raise ValueError("The streaming URL must start with ws:// or wss://.")
        if "@" in parts.netloc:
            raise ValueError("The server URL must not contain a user name or password.")
        try:
            host, port = parts.hostname, parts.port or (443 if scheme == "wss" else 80)
        except ValueError:
            raise ValueError("The server URL has an invalid port.") from None
        if not host:
            raise ValueError("The streaming URL has no host name.")
        where = _host(url)
        lines = [f"GET {(parts.path or '/') + ('?' + parts.query if parts.query else '')} HTTP/1.1",
                 "Host: " + _host_header(host, port, scheme),
                 "Upgrade: websocket", "Connection: Upgrade"]
        key = base64.b64encode(os.urandom(16)).decode()
        lines += [f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [_clean_header(str(k), str(v)) for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

        end = _now() + max(0.1, float(timeout))
        proxy = _proxy_for(scheme, host)
        address = (proxy.host, proxy.port) if proxy else (host, port)
        # Socket timeouts bound each read; this bounds the whole lookup + TLS + HTTP exchange.
        with Deadline(max(0.1, end - _now())).guard(self._time_up):
            try:
                sock = open_socket(address, end - _now(),
                                   lambda: self._closed or self._timed_out)
            except OSError as exc:
                via = f" through the proxy {proxy.where}" if proxy else ""
                raise ConnectFailed(f"Could not connect to {where}{via} "
                                    f"({self._why(exc)})") from None
            self._sock = sock
            try:
                if self._closed:
                    raise ConnectFailed(f"Could not connect to {where} (stopped)")
                if proxy:
                    self._tunnel(sock, proxy, host, port, end, where)
                if scheme == "wss":
                    sock.settimeout(max(0.1, end - _now()))
                    try:
                        sock = tls_context().wrap_socket(sock, server_hostname=host)
                    except (OSError, ValueError) as exc:
                        raise ConnectFailed(f"Could not connect to {where} "
                                            f"({self._why(exc)})") from None
                    self._sock = sock
                self._handshake(sock, request, key, end, where)
            except BaseException:
                self.abort()
                raise
        sock.settimeout(self.io_timeout)
        self.connected = True

    def _time_up(self) -> None:
        self._timed_out = True
        self.abort()

    def _why(self, exc: BaseException) -> str:
        if self._timed_out:
            return "timed out"
        return "stopped" if self._closed else _plain(exc)

    def _read_some(self, sock, end: float, where: str) -> bytes:
        left = end - _now()
        if left <= 0 or self._timed_out:
            raise ConnectFailed(f"Could not connect to {where} (timed out)")
        if self._closed:
            raise ConnectFailed(f"Could not connect to {where} (stopped)")
        sock.settimeout(min(left, self.io_timeout))
        try:
            data = sock.recv(65536)
        except (OSError, ValueError) as exc:
            raise ConnectFailed(f"Could not connect to {where} ({self._why(exc)})") from None
        if not data:
            if self._timed_out or self._closed:
                raise ConnectFailed(f"Could not connect to {where} ({self._why(OSError())})")
            raise ConnectFailed(f"Could not connect to {where} (the server closed the connection)")
        return data

    def _read_head(self, sock, end: float, where: str) -> tuple[bytes, bytearray]:
        """Status line and headers (capped), and whatever arrived after them."""
        buf = bytearray()
        while True:
            cut = buf.find(b"\r\n\r\n")
            if cut >= 0 or len(buf) > self.max_handshake:
                break
            buf += self._read_some(sock, end, where)
        if cut < 0 or cut > self.max_handshake:
            raise ServerFault(f"The server at {where} sent an oversized handshake answer "
                              f"(over {self.max_handshake // 1024} KiB); it is not a "
                              "compatible streaming server.")
        return bytes(buf[:cut]), bytearray(buf[cut + 4:])

    def _tunnel(self, sock, proxy: "_Proxy", host: str, port: int, end: float, where: str) -> None:
        """HTTP CONNECT through the proxy from the environment (https_proxy / http_proxy)."""
        target = f"{_host_header(host, port, 'tunnel')}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.auth:
            lines.append(f"Proxy-Authorization: Basic {proxy.auth}")
        sock.settimeout(max(0.1, end - _now()))
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        except (OSError, ValueError) as exc:
            raise ConnectFailed(f"Could not connect to {where} through the proxy "
                                f"({self._why(exc)})") from None
        head, rest = self._read_head(sock, end, where)
        status, _ = _parse_head(head, where)
        if status != 200 or rest:
            raise ConnectFailed(f"Could not connect to {where}: the proxy {proxy.where} refused "
                                f"the connection (HTTP {status})")

    def _handshake(self, sock, request: bytes, key: str, end: float, where: str) -> None:
        sock.settimeout(max(0.1, end - _now()))
        try:
            sock.sendall(request)
        except (OSError, ValueError) as exc:
            raise ConnectFailed(f"Could not connect to {where} ({self._why(exc)})") from None
        head, rest = self._read_head(sock, end, where)
        status, fields = _parse_head(head, where)
        if 300 <= status < 400:
            raise ServerFault(
                f"The server at {where} tried to redirect the connection elsewhere (HTTP {status}). "
                "Redirects are not followed, so the API key only ever goes to the server you "
                "configured; check the server URL.", Recovery.STOP)
        if status != 101:
            body = rest
            try:
                wanted = min(int(fields.get("content-length", "0")), MAX_ERROR_BODY)
            except ValueError:
                wanted = 0
            while len(body) < wanted:
                try:
                    body += self._read_some(sock, min(end, _now() + 2.0), where)
                except ConnectFailed:
                    break
            raise HandshakeRejected(status, bytes(body[:MAX_ERROR_BODY]).decode("utf-8", "replace"))
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if (fields.get("upgrade", "").lower() != "websocket"
                or "upgrade" not in fields.get("connection", "").lower()
                or fields.get("sec-websocket-accept", "") != accept):
            raise ServerFault(f"The server at {where} did not complete the WebSocket handshake; "
                              "it is not a compatible streaming server.")
        if fields.get("sec-websocket-extensions"):
            raise ServerFault(f"The server at {where} asked for a WebSocket extension that was "
                              "not offered; it is not a compatible streaming server.")
        self._rx = rest

    # ---- send --------------------------------------------------------------------------------
    def send_text(self, text):
        self._send(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data):
        self._send(OP_BINARY, bytes(data))

    def try_send_binary(self, data):
        sock = self._sock
        if sock is None or self._closed or not self.connected:
            raise TransportClosed("not connected")
        if self._send_buffer is None:
            self._send_buffer = send_buffer_size(sock)
        frame = _frame(OP_BINARY, bytes(data))
        if not _has_room(sock, len(frame), self._send_buffer) or not self._send_lock.acquire(blocking=False):
            return False
        try:
            sock.sendall(frame)
        except (OSError, ValueError) as exc:
            raise TransportClosed(_plain(exc)) from None
        finally:
            self._send_lock.release()
        return True

    def ping(self):
        self._send(OP_PING, b"")

    def _send(self, opcode: int, payload: bytes) -> None:
        sock = self._sock
        if sock is None or self._closed or not self.connected:
            raise TransportClosed("not connected")
        data = _frame(opcode, payload)
        with self._send_lock:
            try:
                sock.sendall(data)
            except (OSError, ValueError) as exc:
                raise TransportClosed(_plain(exc)) from None

    # ---- receive -----------------------------------------------------------------------------
    def recv(self):
        sock = self._sock
        if sock is None or not self.connected:
            raise TransportClosed("not connected")
        while True:
            frame = self._next_frame()
            if frame is None:
                if self._closed:
                    raise TransportClosed("closed")
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    return None
                except (OSError, ValueError) as exc:
                    raise TransportClosed(_plain(exc)) from None
                if not data:
                    raise TransportClosed("the server closed the connection")
                self._rx += data
                continue
            message = self._handle(*frame)
            if message is not None:
                return message

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        rx = self._rx
        if len(rx) < 2:
            return None
        b0, b1 = rx[0], rx[1]
        fin, opcode, masked, n = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if b0 & 0x70:
            raise self._fault("used a WebSocket extension that was not negotiated")
        if opcode not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise self._fault("sent an unknown kind of WebSocket frame")
        pos = 2
        if n == 126:
            if len(rx) < 4:
                return None
            n, pos = int.from_bytes(rx[2:4], "big"), 4
        elif n == 127:
            if len(rx) < 10:
                return None
            n, pos = int.from_bytes(rx[2:10], "big"), 10
        if opcode >= OP_CLOSE and (n > 125 or not fin):
            raise self._fault("sent a malformed control frame")
        if n > self.max_message or (opcode == OP_CONT and self._parts_size + n > self.max_message):
            raise self._too_big(n if opcode != OP_CONT else self._parts_size + n)
        if masked:
            pos += 4
        if len(rx) < pos + n:
            return None
        payload = bytes(rx[pos:pos + n])
        if masked:
            payload = _mask(bytes(rx[pos - 4:pos]), payload)
        del rx[:pos + n]
        return fin, opcode, payload

    def _handle(self, fin: bool, opcode: int, payload: bytes) -> Incoming | None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if opcode == OP_CONT:
                if self._parts_op is None:
                    raise self._fault("sent a continuation frame with no message to continue")
            elif self._parts_op is not None:
                raise self._fault("started a new message inside a fragmented one")
            else:
                self._parts_op = opcode
            self._parts.append(payload)
            self._parts_size += len(payload)
            if not fin:
                return None
            op, data = self._parts_op, b"".join(self._parts)
            self._parts, self._parts_size, self._parts_op = [], 0, None
            if op == OP_TEXT:
                return Incoming("text", data.decode("utf-8", "replace"))
            return Incoming("binary", data)
        if opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            reason = payload[2:].decode("utf-8", "replace") if len(payload) > 2 else None
            try:  # answer the close; the peer may already be gone
                self._send(OP_CLOSE, payload[:2])
            except TransportClosed:
                pass
            return Incoming("close", code=code, reason=reason or None)
        if opcode == OP_PING:
            try:
                self._send(OP_PONG, payload)
            except TransportClosed:
                pass
            return None
        return Incoming("pong")

    def _fault(self, what: str) -> ServerFault:
        return ServerFault(f"The streaming server {what}; the connection was closed.")

    def _too_big(self, size: int) -> ServerFault:
        shown = f"{size / _MiB:,.0f} MiB" if size >= _MiB else f"{size:,} bytes"
        return ServerFault(f"The streaming server announced a {shown} message, over the "
                           f"{self.max_message // _MiB} MiB limit; the connection was closed.")

    # ---- close -------------------------------------------------------------------------------
    def close(self, code=1000):
        if self._sock is not None and self.connected and not self._closed:
            try:
                self._send(OP_CLOSE, int(code).to_bytes(2, "big"))
            except TransportClosed:
                pass
        self.abort()

    def abort(self):
        self._closed = True
        sock = self._sock
        if sock is None:
            return
        try:  # shutdown (not just close) wakes a thread blocked in recv on Linux
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass
        try:
            sock.close()
        except OSError:
            pass


def _now() -> float:
    return time.monotonic()


def _host_header(host: str, port: int, scheme: str) -> str:
    """host[:port] as HTTP writes it; ``scheme="tunnel"`` always keeps the port (CONNECT)."""
    shown = f"[{host}]" if ":" in host else host
    default = {"wss": 443, "ws": 80}.get(scheme)
    return shown if port == default else f"{shown}:{port}"


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    auth: str | None          # base64 user:password for Proxy-Authorization
    where: str                # host:port, for messages (never the password)


def _proxy_for(scheme: str, host: str) -> _Proxy | None:
    """The HTTP proxy the environment names for this host, if any (as the token requests use)."""
    import urllib.request

    from app.core.streaming.urls import is_loopback

    if is_loopback(host):
        return None
    url = urllib.request.getproxies().get("https" if scheme == "wss" else "http")
    if not url:
        return None
    try:
        if urllib.request.proxy_bypass(host):
            return None
    except OSError:
        pass
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        return None             # socks5:// or a TLS proxy: not supported, connect directly
    try:
        port = parts.port or 80
    except ValueError:
        return None
    auth = None
    if parts.username is not None:
        from urllib.parse import unquote
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = base64.b64encode(raw.encode("utf-8")).decode("ascii")
    return _Proxy(parts.hostname, port, auth, _host_header(parts.hostname, port, "tunnel"))


def _parse_head(head: bytes, where: str) -> tuple[int, dict[str, str]]:
    lines = head.split(b"\r\n")
    if len(lines) > MAX_HANDSHAKE_LINES:
        raise ServerFault(f"The server at {where} sent too many handshake headers; it is not a "
                          "compatible streaming server.")
    status_line = lines[0].decode("latin-1").split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise ServerFault(f"The server at {where} did not answer like a web server; it is not a "
                          "compatible streaming server.")
    fields: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return int(status_line[1]), fields


def _host(url: str) -> str:
    """scheme://host:port/path only: no query (tokens) and no user name or password."""
    parts = urlsplit(redact_url(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}{parts.path}"
