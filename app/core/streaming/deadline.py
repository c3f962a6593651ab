"""One overall time limit for obtaining credentials and connecting, which Stop can cut short.

Socket timeouts bound each read, not a whole exchange: a peer answering one byte every few
seconds never trips them. A ``Deadline`` closes the sockets registered with it when time is up
or when ``cancel()`` is called (Stop, Ctrl+C), so any blocked read returns at once.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class Cancelled(Exception):
    """Stop was requested while connecting."""


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + max(0.0, float(seconds))
        self._lock = threading.Lock()
        self._closers: dict[int, Callable[[], None]] = {}
        self._next_id = 0
        self.cancelled = False
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def check(self) -> None:
        """Raise ``Cancelled`` after Stop, ``TimeoutError`` once the time is up."""
        if self.cancelled:
            raise Cancelled()
        if self.expired or self.remaining() <= 0:
            raise TimeoutError("deadline passed")

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            closers = list(self._closers.values())
        _run(closers)

    @contextmanager
    def guard(self, closer: Callable[[], None]) -> Iterator[None]:
        """While inside, ``closer`` (which must unblock the I/O) runs on expiry or cancel."""
        with self._lock:
            if self.cancelled:
                raise Cancelled()
            ident = self._next_id
            self._next_id += 1
            self._closers[ident] = closer
        timer = threading.Timer(self.remaining(), self._expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._closers.pop(ident, None)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            closers = list(self._closers.values())
        _run(closers)


def _run(closers) -> None:
    for closer in closers:
        try:
            closer()
        except Exception:  # best effort: the socket may already be closed
            pass


def open_socket(address: tuple[str, int], timeout: float,
                should_stop: Callable[[], bool] = lambda: False) -> socket.socket:
    """``socket.create_connection`` whose name lookup can be abandoned.

    getaddrinfo cannot be interrupted and a broken resolver can hold it for many seconds, so it
    runs on a helper thread while this one watches the clock and ``should_stop`` (Stop, Ctrl+C).
    """
    host, port = address
    end = time.monotonic() + max(0.05, timeout)
    found: dict = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc
        done.set()

    threading.Thread(target=lookup, daemon=True, name="name-lookup").start()
    while not done.wait(0.05):
        if should_stop():
            raise ConnectionAbortedError("stopped")
        if time.monotonic() >= end:
            raise socket.timeout("timed out")
    if "error" in found:
        error = found["error"]
        raise error if isinstance(error, OSError) else socket.gaierror(str(error))
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in found["infos"]:
        if should_stop():
            raise ConnectionAbortedError("stopped")
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(max(0.05, end - time.monotonic()))
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or socket.gaierror("no address")
