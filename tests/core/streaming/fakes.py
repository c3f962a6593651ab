"""A scripted in-memory Transport: the test plays the server."""

from __future__ import annotations

import json
import queue
import threading
import time

from app.core.streaming.transport import Incoming, Transport, TransportClosed


class FakeTransport(Transport):
    """``auto`` replies like a well-behaved server: Begin on connect, Termination on Terminate."""

    def __init__(self, protocol: str = "v3", *, auto: bool = True, connect_error=None) -> None:
        self.protocol = protocol
        self.auto = auto
        self.connect_error = connect_error
        self.url = None
        self.headers = None
        self.sent: list[tuple[str, object, float]] = []   # (kind, data, monotonic time)
        self.inbox: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self.close_code = None
        self.on_text = None       # callable(dict) for custom server behaviour
        self.pings = 0

    # --- server side helpers ---
    def push(self, obj) -> None:
        self.inbox.put(Incoming("text", obj if isinstance(obj, str) else json.dumps(obj)))

    def push_close(self, code, reason=None) -> None:
        self.inbox.put(Incoming("close", code=code, reason=reason))

    def drop(self) -> None:
        self.inbox.put("DROP")

    def texts(self) -> list[dict]:
        return [json.loads(d) for k, d, _ in self.sent if k == "text"]

    def frames(self) -> list[bytes]:
        return [d for k, d, _ in self.sent if k == "binary"]

    def wait_for(self, predicate, timeout=5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- Transport ---
    def connect(self, url, headers, timeout):
        self.url, self.headers = url, dict(headers)
        if self.connect_error is not None:
            raise self.connect_error
        if self.auto:
            if self.protocol == "v3":
                self.push({"type": "Begin", "id": "sess-1", "expires_at": 1759796682})
            else:
                self.push({"message_type": "SessionBegins",
                           "session_id": "f14499a6-c399-4c30-b1eb-0a33af64b1d9",
                           "expires_at": "2023-11-04T16:51:38.316048"})

    def send_text(self, text):
        if self.closed.is_set():
            raise TransportClosed("closed")
        self.sent.append(("text", text, time.monotonic()))
        obj = json.loads(text)
        if self.on_text is not None:
            self.on_text(obj)
        if self.auto and (obj.get("type") == "Terminate" or obj.get("terminate_session")):
            if self.protocol == "v3":
                self.push({"type": "Termination", "audio_duration_seconds": 1,
                           "session_duration_seconds": 1})
            else:
                self.push({"message_type": "SessionTerminated"})
            self.push_close(1000)

    def send_binary(self, data):
        if self.closed.is_set():
            raise TransportClosed("closed")
        self.sent.append(("binary", bytes(data), time.monotonic()))

    def ping(self):
        self.pings += 1

    def recv(self):
        if self.closed.is_set():
            raise TransportClosed("closed")
        try:
            item = self.inbox.get(timeout=0.05)
        except queue.Empty:
            return None
        if item == "DROP":
            self.closed.set()
            raise TransportClosed("connection reset")
        return item

    def close(self, code=1000):
        self.close_code = code
        self.closed.set()

    def abort(self):
        self.closed.set()
