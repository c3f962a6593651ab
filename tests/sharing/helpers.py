"""Small clients for the caption server: raw HTTP requests and an SSE reader."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from app.core.events import Final, Partial


def request(url: str, path: str = "/", *, method: str = "GET", headers=None, body=None,
            token: str | None = None) -> tuple[int, dict, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    if token is not None:
        path += ("&" if "?" in path else "?") + f"token={token}"
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read() if not resp.getheader("Content-Type", "").startswith("text/event-stream") \
        else b""
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    conn.close()
    return out


class SSEReader:
    """Reads ``id:``/``data:`` messages from ``/events`` with a plain HTTP client."""

    def __init__(self, url: str, *, token: str | None = None, last_id: str | None = None,
                 read_timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=read_timeout)
        path = "/events" + (f"?token={token}" if token else "")
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.last_id: str | None = None

    def next(self) -> tuple[str | None, dict]:
        event_id, data = None, None
        while True:
            line = self.resp.fp.readline()
            if not line:
                raise EOFError("stream closed")
            line = line.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                self.last_id = event_id
                return event_id, data

    def take(self, n: int) -> list[dict]:
        return [self.next()[1] for _ in range(n)]

    def close(self) -> None:
        self.conn.close()


def finals(share, label: str, texts) -> None:
    for i, text in enumerate(texts):
        share.on_event(label, Final(text, i * 1000, i * 1000 + 900))


def partial(share, label: str, text: str, start: int = 0) -> None:
    share.on_event(label, Partial(text, start, start + 300))


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def local_url(share) -> str:
    """The share link as this computer reaches it (the printed one names the LAN address)."""
    token = share.server.token
    return f"http://127.0.0.1:{share.server.port}/" + (f"?token={token}" if token else "")
