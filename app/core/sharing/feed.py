"""The event feed behind ``/events`` and ``/ws``: numbered records, recent history, resumes.

Lives on the sharing loop's thread only (no locks): capture threads hand events over with
``call_soon_threadsafe``. Ids are ``EPOCH-N``: a browser that resumes with an id from an
earlier run (another epoch) gets the full history instead of nothing.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    n: int
    label: str
    kind: str          # the record's "event" value
    record: dict
    sse: bytes         # one complete SSE message
    ws: str            # the record with its id, for WebSocket clients

    @property
    def final(self) -> bool:
        return self.kind == "final"


class Feed:
    def __init__(self, history: int = 500) -> None:
        self.epoch = secrets.token_hex(4)
        self._next = 1
        self._ring: deque[Item] = deque(maxlen=max(1, history))
        self._partials: dict[str, Item] = {}   # the live partial per source, replaced in place

    def event_id(self, n: int) -> str:
        return f"{self.epoch}-{n}"

    def add(self, record: dict) -> Item:
        n = self._next
        self._next += 1
        data = json.dumps(record, ensure_ascii=False)
        # json.dumps escapes newlines, so one data: line always holds the whole record.
        sse = f"id: {self.event_id(n)}\ndata: {data}\n\n".encode()
        ws = json.dumps({**record, "event_id": self.event_id(n)}, ensure_ascii=False)
        item = Item(n, str(record.get("source", "")), str(record.get("event", "")), record, sse, ws)
        if item.kind == "partial":
            self._partials[item.label] = item
        else:
            if item.kind in ("final", "session_ended"):
                self._partials.pop(item.label, None)
            self._ring.append(item)
        return item

    def parse_last_id(self, text: str | None) -> int | None:
        """The number after which a client resumes; None = send the whole history."""
        if not text:
            return None
        epoch, _, n = text.strip().partition("-")
        if epoch != self.epoch or not n.isdigit():
            return None
        return int(n)

    def replay(self, after: int | None) -> list[Item]:
        """What a (re)connecting client has not seen yet, oldest first."""
        start = 0 if after is None else after
        items = [i for i in self._ring if i.n > start]
        items += [p for p in self._partials.values() if p.n > start]
        items.sort(key=lambda i: i.n)
        return items

    @property
    def finals(self) -> list[Item]:
        return [i for i in self._ring if i.final]
