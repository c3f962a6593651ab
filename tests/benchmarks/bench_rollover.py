"""Long run across many session limits: no final lost or doubled, no audio uncaptioned at a rollover.

    python -m tests.benchmarks.bench_rollover --minutes 20 --session-s 60    # the full run
    python -m tests.benchmarks.bench_rollover --minutes 1 --session-s 15     # a quick check

The real v3 client and pipeline (as the CLI and the GUI use them) stream tone "speech" at real
time to the loopback server, which ends every session after ``--session-s`` (as a token's
``max_session_duration_seconds`` does) with 3008 unless the client rolled over first. Speaker
labels are on and every utterance's final text is numbered, so a lost or doubled final is exact.

Printed: rollovers (at a pause / forced), sessions the server closed for their age, finals lost /
doubled / out of order, Gap events, and the audio each rollover left uncaptioned: the stream audio
minus what the sessions received (less the silence padding of each session's last frame), as a
maximum per rollover (target ≤ one chunk).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path

from app.core.audio.source import WavFileSource
from app.core.credentials import Secret
from app.core.events import Final, Gap, Revision, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from tests.benchmarks.common import result, write_wav
from tests.loopback import LoopbackServer
from tests.loopback.wsclient import tone_speech

KEY = "bench-rollover-key"


class RolloverLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.pause = self.forced = 0

    def emit(self, record) -> None:
        text = record.getMessage()
        if text.startswith("session rollover at a pause"):
            self.pause += 1
        elif text.startswith("session rollover without a pause"):
            self.forced += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--session-s", type=float, default=60.0, help="server session limit (default 60)")
    ap.add_argument("--chunk-ms", type=int, default=100)
    args = ap.parse_args(argv)

    cycle = [("speech", 1.6), ("silence", 1.1), ("speech", 0.9), ("silence", 1.4)]
    n_cycles = max(1, int(args.minutes * 60 / sum(s for _, s in cycle)))
    segments = [("silence", 0.3)] + cycle * n_cycles
    utterances = 2 * n_cycles
    expected = [f"Caption number {k}." for k in range(utterances)]
    work = Path(tempfile.mkdtemp(prefix="bench-rollover-"))
    wav = work / "talk.wav"
    pcm = tone_speech(segments, 16000)
    write_wav(wav, pcm.tobytes())
    audio_ms = len(pcm) / 16.0
    script = [{"text": t, "speaker": "ABC"[k % 3]} for k, t in enumerate(expected)]
    log = RolloverLog()
    logging.getLogger("app.core.pipeline").addHandler(log)
    logging.getLogger("app.core.pipeline").setLevel(logging.INFO)
    events: list = []
    lock = threading.Lock()

    def listener(event):
        with lock:
            events.append(event)

    with LoopbackServer(api_keys=(KEY,), script=script, max_session_s=args.session_s,
                        rate_grace_s=1.5, idle_timeout_s=60.0) as server:
        config = SessionConfig(server_url=server.url, silence_ms=400, chunk_ms=args.chunk_ms,
                               speaker_labels=True)
        source = WavFileSource(wav, 16000, args.chunk_ms)
        pipeline = CaptionPipeline(source, lambda lst: create_session(config, lst, api_key=Secret(KEY)),
                                   listener, base_backoff_s=0.2)
        print(f"{utterances} utterances, {audio_ms / 60000:.1f} min of audio, session limit "
              f"{args.session_s:.0f} s", flush=True)
        started = time.monotonic()
        pipeline.run()
        wall = time.monotonic() - started
        server.wait_for(lambda: all(r.ended for r in server.sessions), 15)
        records = list(server.sessions)

    finals = [e.text for e in events if isinstance(e, Final)]
    lost = [t for t in expected if t not in finals]
    doubled = sorted({t for t in finals if finals.count(t) > 1})
    in_order = [t for t in finals if t in expected] == [t for t in expected if t in finals]
    expired = [r for r in records if r.close_code == 3008]
    gaps = [e for e in events if isinstance(e, Gap)]
    errors = [e.message for e in events if isinstance(e, StreamError)]
    used = [r for r in records if r.audio_ms > 0]
    # Whole chunks reach one session each; a short tail would be padded (never lost), so the
    # sessions' audio can only exceed the stream's, never fall short of it, when nothing is lost.
    received_ms = sum(r.audio_ms for r in used)
    uncaptioned_ms = max(0.0, audio_ms - received_ms)
    per_rollover = uncaptioned_ms / max(1, pipeline.rollovers)
    print(f"wall {wall:.0f} s; sessions {len(records)} ({len(used)} with audio); rollovers "
          f"{pipeline.rollovers} ({log.pause} at a pause, {log.forced} forced)")
    print(f"finals {len(finals)}/{utterances}: lost {len(lost)}, doubled {len(doubled)}, in order {in_order}; "
          f"revisions {sum(isinstance(e, Revision) for e in events)}")
    print(f"sessions closed by the server for their age (3008): {len(expired)}; gaps {len(gaps)}; "
          f"errors {errors[:3]}")
    print(f"audio {audio_ms:.0f} ms, received by sessions {received_ms:.0f} ms; uncaptioned "
          f"{uncaptioned_ms:.0f} ms; per rollover {per_rollover:.1f} ms (chunk {args.chunk_ms} ms)")
    result("finals lost", len(lost), "finals", 0)
    result("finals doubled", len(doubled), "finals", 0)
    result("sessions closed for their age (3008)", len(expired), "sessions", 0)
    result("audio uncaptioned per rollover", per_rollover, "ms", args.chunk_ms)
    result("rollovers", pipeline.rollovers, "rollovers", None, better="higher")
    ok = not lost and not doubled and in_order and not expired and not gaps and per_rollover <= args.chunk_ms
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
