"""Client-added latency: audio chunk handed to the session → binary frame written to the socket.

Streams espeak-ng speech at real time to the loopback server through the app's own v3 and v2
clients. A timing transport wraps the real websocket-client transport and stamps each binary frame
after ``send`` returns; the producer stamps each chunk just before ``send_audio``.
Target: p99 ≤ 2 ms. Run: ``.venv/bin/python -m tests.benchmarks.bench_client_latency [--seconds 30]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
import wave
from pathlib import Path

from app.core.credentials import Secret
from app.core.events import Final
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from app.core.streaming.transport import WebSocketTransport
from tests.benchmarks.common import percentile, result, speech_wav
from tests.benchmarks.common import ServerProcess


class TimingTransport(WebSocketTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []

    def send_binary(self, data: bytes) -> None:
        super().send_binary(data)
        self.sent_at.append(time.perf_counter())


def measure(protocol: str, pcm: bytes, chunk_ms: int = 100) -> dict:
    # The server runs in another process, as AssemblyAI's would: in-process it would compete
    # with the client for the GIL and its work would show up as client latency.
    with ServerProcess() as server:
        transports: list[TimingTransport] = []

        def factory():
            transports.append(TimingTransport())
            return transports[-1]

        finals = []
        config = SessionConfig(protocol=protocol, server_url=server.url, chunk_ms=chunk_ms)
        session = create_session(config, lambda e: finals.append(e) if isinstance(e, Final) else None,
                                 api_key=Secret(server.api_key), transport_factory=factory)
        session.start()
        step = 16000 * 2 * chunk_ms // 1000
        ready: list[float] = []
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, len(pcm) - step + 1, step)):
            due = t0 + k * chunk_ms / 1000.0   # a capture device hands over a chunk every chunk_ms
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ready.append(time.perf_counter())
            session.send_audio(pcm[i:i + step])
        audio_s = len(ready) * chunk_ms / 1000.0
        # Wait for the last frame to leave before stopping (stop pads and terminates).
        deadline = time.perf_counter() + 5
        while len(transports[0].sent_at) < len(ready) and time.perf_counter() < deadline:
            time.sleep(0.01)
        cpu = time.process_time() - cpu0
        session.stop()
        sent = transports[0].sent_at[:len(ready)]
        delays_ms = [(s - r) * 1000.0 for r, s in zip(ready, sent)]
    return {"delays_ms": delays_ms, "audio_s": audio_s, "cpu_s": cpu, "finals": len(finals)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per protocol (default 30)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_wav(Path(tmp) / "speech.wav", repeat=max(1, int(args.seconds // 30) + 1))
        with wave.open(str(wav)) as w:
            pcm = w.readframes(w.getnframes())[: int(args.seconds * 16000) * 2]
    for protocol in ("v3", "v2"):
        r = measure(protocol, pcm)
        d = r["delays_ms"]
        print(f"{protocol}: {len(d)} frames over {r['audio_s']:.0f} s of audio, {r['finals']} finals")
        print(f"  chunk ready → frame on socket: p50 {percentile(d, 50):.3f} ms, "
              f"p99 {percentile(d, 99):.3f} ms, max {max(d):.3f} ms")
        print(f"  process CPU while streaming: {r['cpu_s']:.2f} s "
              f"({60 * r['cpu_s'] / r['audio_s']:.2f} CPU-s per minute of audio, client process)")
        result(f"client latency p50 ({protocol})", percentile(d, 50), "ms")
        result(f"client latency p99 ({protocol})", percentile(d, 99), "ms", target=2.0)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
