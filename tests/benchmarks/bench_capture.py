"""Benchmark (not a test): capture → frame-sent latency and CPU per minute of audio.

A private PulseAudio virtual mic (the test fixture's recipe) plays speech on a loop; the app's
own source + CaptionPipeline + streaming client send it to the loopback AssemblyAI server,
which runs in a separate process so its CPU is not counted.

    .venv/bin/python -m tests.benchmarks.bench_capture --seconds 60 --device-rate 48000

Latency per chunk = the moment the websocket frame that completes the chunk was sent, minus
the moment PortAudio handed the chunk to the app (``read()`` returned). The device's own input
buffering (``input latency`` printed below, from PortAudio) comes on top of that.
CPU = this process's CPU seconds (capture, conversion, client) per minute of audio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SERVER_SNIPPET = """
import sys, time
from tests.loopback import LoopbackServer
s = LoopbackServer(idle_timeout_s=600, rate_grace_s=60).start()
print(s.url, s.api_key, flush=True)
sys.stdin.read()
s.stop()
"""


def make_speech(path: Path, rate: int, channels: int) -> Path:
    raw = path.with_suffix(".raw.wav")
    text = ("Our customers want captions that are easy to read from across the room. "
            "The quarterly budget review starts at nine tomorrow morning.")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", str(channels), "-b", "16", str(path),
                    "pad", "0.2", "0.8"], check=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio to stream (default 60)")
    ap.add_argument("--device-rate", type=int, default=48000, help="virtual mic rate (16000 = no resampling)")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--protocol", choices=("v3", "v2"), default="v3")
    ap.add_argument("--encoding", choices=("pcm_s16le", "pcm_mulaw"), default="pcm_s16le")
    ap.add_argument("--chunk-ms", type=int, default=100)
    args = ap.parse_args()

    from tests.fixtures.pulse import PulseServer

    pulse = PulseServer(args.device_rate, args.channels).start()
    server = subprocess.Popen([sys.executable, "-c", SERVER_SNIPPET], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    player = None
    try:
        url, key = server.stdout.readline().split()
        os.environ.update(XDG_RUNTIME_DIR=str(pulse.runtime_dir), PULSE_SERVER=pulse.server)

        from app.core.audio import devices
        from app.core.credentials import Secret
        from app.core.pipeline import CaptionPipeline
        from app.core.session_config import SessionConfig
        from app.core.session_factory import create_session
        from app.core.streaming import transport

        sent: list[tuple[float, int]] = []          # (time, cumulative samples sent)
        reads: list[tuple[float, int]] = []         # (time read returned, cumulative samples captured)
        bytes_per_sample = 1 if args.encoding == "pcm_mulaw" else 2
        total = {"sent": 0, "read": 0}
        real_send = transport.WebSocketTransport.send_binary

        def count_sent(data):
            total["sent"] += len(data) // bytes_per_sample
            sent.append((time.monotonic(), total["sent"]))

        def timed_send(self, data):
            real_send(self, data)
            count_sent(data)

        real_try_send = transport.WebSocketTransport.try_send_binary

        def timed_try_send(self, data):
            sent_now = real_try_send(self, data)
            if sent_now:          # the capture thread's own send; else the sender thread's send_binary
                count_sent(data)
            return sent_now

        transport.WebSocketTransport.send_binary = timed_send
        transport.WebSocketTransport.try_send_binary = timed_try_send

        config = SessionConfig(protocol=args.protocol, server_url=url, encoding=args.encoding,
                               chunk_ms=args.chunk_ms)
        [source] = devices.open_sources("mic", config.sample_rate, config.chunk_ms)
        real_read = source.read

        def timed_read():
            data = real_read()
            total["read"] += len(data) // 2
            reads.append((time.monotonic(), total["read"]))
            return data

        source.read = timed_read
        handed: list[tuple[float, int]] = []        # (time send_audio returned, cumulative samples)

        def make_session(listener):
            session = create_session(config, listener, api_key=Secret(key))
            real_send_audio = session.send_audio

            def timed_send_audio(pcm16, **kw):
                real_send_audio(pcm16, **kw)
                total["handed"] = total.get("handed", 0) + len(pcm16) // 2
                handed.append((time.monotonic(), total["handed"]))

            session.send_audio = timed_send_audio
            return session

        finals = []
        pipeline = CaptionPipeline(source, make_session, lambda ev: finals.append(ev), label="mic")
        runner = threading.Thread(target=pipeline.run, daemon=True)
        wav = make_speech(Path(tempfile.mkdtemp()) / "speech.wav", args.device_rate, args.channels)

        runner.start()
        deadline = time.monotonic() + 30
        while not reads and time.monotonic() < deadline:
            time.sleep(0.01)
        cpu0, wall0, n0 = time.process_time(), time.monotonic(), len(reads)
        stop_playing = threading.Event()

        def play_loop():
            while not stop_playing.is_set():
                try:
                    pulse.play(wav)
                except RuntimeError:       # the server is going away at the end of the run
                    return

        player = threading.Thread(target=play_loop, daemon=True)
        player.start()
        while time.monotonic() - wall0 < args.seconds and runner.is_alive():
            time.sleep(0.2)
        cpu = time.process_time() - cpu0
        audio_s = (len(reads) - n0) * args.chunk_ms / 1000
        stop_playing.set()
        pipeline.stop()
        runner.join(30)
        player.join(30)

        def latencies(events):
            times = np.array([t for t, _ in events])
            counts = np.array([n for _, n in events])
            out = []
            for t_read, n in reads[n0:]:
                i = int(np.searchsorted(counts, n))
                if i < len(counts):
                    out.append((times[i] - t_read) * 1000)
            return np.array(out)

        lat = latencies(sent)
        to_client = latencies(handed)
        print(f"device: {args.device_rate} Hz x{args.channels} → 16000 Hz mono, {args.protocol} "
              f"{args.encoding}, {args.chunk_ms} ms chunks; captured {audio_s:.1f} s of audio")
        print(f"capture → frame-sent latency: p50 {np.percentile(lat, 50):.2f} ms, "
              f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.2f} ms (n={len(lat)})")
        print(f"  of which capture → handed to the streaming client: p50 "
              f"{np.percentile(to_client, 50):.2f} ms, p99 {np.percentile(to_client, 99):.2f} ms; "
              "the rest is the client's real-time pacing and its sender thread")
        if source.device_rate:
            print(f"device opened at {source.device_rate} Hz x{source.device_channels}")
        print(f"CPU (capture + conversion + client, this process): {cpu / (audio_s / 60):.2f} s "
              f"per minute of audio ({100 * cpu / max(audio_s, 1e-9):.2f} % of one core)")
        print(f"overflows: {source.level.snapshot().overflows}; finals received: "
              f"{sum(1 for e in finals if type(e).__name__ == 'Final')}")
        return 0
    finally:
        if server.poll() is None:
            server.stdin.close()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        pulse.stop()


if __name__ == "__main__":
    sys.exit(main())
