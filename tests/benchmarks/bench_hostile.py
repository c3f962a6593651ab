"""How fast the client gets out of a misbehaving peer, and how much memory it costs.

    python -m tests.benchmarks.bench_hostile [--runs 5]

- Stop while connecting: a server dribbles its handshake one byte every 0.5 s; ``stop()`` is
  called 0.5 s in; time from ``stop()`` until ``start()`` has returned.
- Overall deadline: the same server, ``start(2.0)``; time until it gives up.
- 4 GiB frame: after ``Begin`` the server announces a 4 GiB frame and streams zeros as fast as
  it can; time until the session ends, and peak RSS growth of this process meanwhile.
- Endless handshake headers: time until the client calls it a server fault.
- Ctrl+C: ``python -m app --headless`` stuck on the dribbling server gets one SIGINT; time until
  the process has exited.
All servers are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import StreamError
from app.core.session_config import SessionConfig
from app.core.streaming.auth import KeyAuth
from app.core.streaming.v3 import V3Session
from tests.benchmarks.common import result, write_wav
from tests.hostile.server import KEY, HostileServer, MemoryWatch, ws_header


def _session(url: str, events: list) -> V3Session:
    return V3Session(SessionConfig(server_url=url), events.append, auth=KeyAuth(Secret(KEY)))


def _dribble(conn) -> None:
    for byte in b"HTTP/1.1 101 Switching Protocols\r\n" * 50:
        if conn.expired() or not conn.send(bytes([byte])):
            return
        time.sleep(0.5)


def _huge(conn) -> None:
    conn.accept_websocket()
    conn.ws_text({"type": "Begin", "id": "b"})
    conn.send(ws_header(4 << 30, opcode=2))
    chunk = b"\0" * (1 << 20)
    while not conn.expired() and conn.send(chunk):
        pass


def _headers(conn) -> None:
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    while not conn.expired() and conn.send(line):
        pass


def stop_latency(server: HostileServer) -> float:
    s = _session(server.url, [])
    done = threading.Event()

    def run():
        try:
            s.start(30)
        except SessionError:
            pass
        done.set()

    threading.Thread(target=run, daemon=True).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    s.stop(5)
    done.wait(10)
    return (time.monotonic() - t0) * 1000


def timed_start(server: HostileServer, timeout: float) -> float:
    t0 = time.monotonic()
    try:
        _session(server.url, []).start(timeout)
    except SessionError:
        pass
    return time.monotonic() - t0


def huge_frame(server: HostileServer) -> tuple[float, float]:
    events: list = []
    s = _session(server.url, events)
    with MemoryWatch() as memory:
        s.start(5)
        t0 = time.monotonic()
        while not any(isinstance(e, StreamError) for e in events) and time.monotonic() - t0 < 10:
            time.sleep(0.005)
        took = (time.monotonic() - t0) * 1000
    s.stop(1)
    return took, memory.growth_mb


def ctrl_c_exit(server: HostileServer, wav: Path) -> float:
    env = {**os.environ, "ASSEMBLYAI_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    before = server.connections
    proc = subprocess.Popen([sys.executable, "-m", "app", "--headless", "--server", server.url,
                             "--engine", "assemblyai", "--source", f"file:{wav}"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 20
    while server.connections == before and time.monotonic() < end:
        time.sleep(0.02)
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    return time.monotonic() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("app").setLevel(logging.ERROR)   # the expected protocol-violation warnings
    servers = [HostileServer(_dribble), HostileServer(_huge), HostileServer(_headers)]
    dribble, huge, headers = servers
    try:
        stops = [stop_latency(dribble) for _ in range(args.runs)]
        print(f"stop while connecting: median {statistics.median(stops):.1f} ms, "
              f"max {max(stops):.1f} ms over {args.runs} runs")
        result("stop while connecting, max", max(stops), "ms", target=1000)
        waits = [timed_start(dribble, 2.0) for _ in range(max(1, args.runs // 2))]
        print(f"start(2.0) against a dribbling server gave up after {max(waits):.2f} s (worst)")
        result("overall deadline 2 s, worst", max(waits), "s", target=2.5)
        frames = [huge_frame(huge) for _ in range(args.runs)]
        print(f"4 GiB frame: session ended after median {statistics.median(f[0] for f in frames):.1f} ms, "
              f"peak RSS growth max {max(f[1] for f in frames):.1f} MB")
        result("4 GiB frame, RSS growth max", max(f[1] for f in frames), "MB", target=40)
        heads = [timed_start(headers, 10) * 1000 for _ in range(args.runs)]
        print(f"endless handshake headers: fault after median {statistics.median(heads):.1f} ms")
        result("endless headers, time to fault max", max(heads), "ms", target=3000)
        with tempfile.TemporaryDirectory() as tmp:
            wav = write_wav(Path(tmp) / "quiet.wav", b"\0\0" * 16000)
            exits = [ctrl_c_exit(dribble, wav) for _ in range(max(1, args.runs // 2))]
        print(f"Ctrl+C → CLI exited after {min(exits):.2f}-{max(exits):.2f} s")
        result("Ctrl+C while connecting, CLI exit, max", max(exits), "s", target=2.0)
    finally:
        for server in servers:
            server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
