"""Fault injection: what the next session(s) should suffer, queued in the order inject() was called."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

KNOWN = {"drop_after_ms", "close_after_ms", "malformed_after_ms", "unknown_message_after_ms",
         "stall_after_ms", "reject_auth", "message_after_ms", "repeat"}


@dataclass(frozen=True)
class FaultPlan:
    drop_after_ms: float | None = None                       # abort the TCP connection, no close frame
    close_after_ms: tuple[float, int, str] | None = None     # (ms, close code, reason)
    malformed_after_ms: float | None = None                  # one text frame that is not JSON
    unknown_message_after_ms: float | None = None            # one well-formed message of an unknown type
    stall_after_ms: float | None = None                      # stop answering, keep the socket open
    reject_auth: bool = False                                # refuse even a valid key/token
    message_after_ms: tuple = ()                             # ((ms, message dict), …) sent as they are

    @classmethod
    def from_kwargs(cls, faults: dict) -> tuple["FaultPlan", int]:
        unknown = set(faults) - KNOWN
        if unknown:
            raise TypeError(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN))}")
        repeat = int(faults.pop("repeat", 1))
        if repeat < 1:
            raise ValueError("repeat must be at least 1")
        close = faults.get("close_after_ms")
        if close is not None:
            ms, code, *rest = close
            faults["close_after_ms"] = (float(ms), int(code), str(rest[0]) if rest else "")
        messages = faults.get("message_after_ms")
        if messages:
            if isinstance(messages[0], (int, float)):          # one (ms, message) pair
                messages = (messages,)
            faults["message_after_ms"] = tuple((float(ms), dict(msg)) for ms, msg in messages)
        return cls(**faults), repeat


class FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: deque[FaultPlan] = deque()

    def add(self, plan: FaultPlan, repeat: int) -> None:
        with self._lock:
            self._plans.extend([plan] * repeat)

    def next(self) -> FaultPlan:
        """The plan for a session that is starting now (no faults if none is queued)."""
        with self._lock:
            return self._plans.popleft() if self._plans else FaultPlan()

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)
