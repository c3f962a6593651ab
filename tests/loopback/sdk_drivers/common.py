"""Shared by the SDK driver scripts: JSON-lines output and real-time paced WAV chunks (stdlib only)."""

import json
import sys
import threading
import time
import wave

_lock = threading.Lock()
T0 = time.monotonic()


def emit(event: str, **fields) -> None:
    with _lock:
        print(json.dumps({"event": event, "t": round(time.monotonic() - T0, 3), **fields}, default=str), flush=True)


def wav_chunks(path: str, chunk_ms: int = 100):
    """(audio position ms, bytes) of 16-bit mono PCM, every chunk exactly chunk_ms (last one padded)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            sys.exit("driver needs 16-bit mono WAV")
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    step = rate * chunk_ms // 1000 * 2
    chunks = []
    for i in range(0, len(data), step):
        chunk = data[i:i + step]
        chunks.append((i // 2 * 1000 // rate, chunk + b"\0" * (step - len(chunk))))
    return rate, chunks


def paced(chunks, chunk_ms: int, actions, act):
    """Yield chunks at real time; before the chunk at/after each action's at_ms, run act(action)."""
    pending = sorted(actions, key=lambda a: a["at_ms"])
    start = time.monotonic()
    for n, (pos, chunk) in enumerate(chunks):
        while pending and pending[0]["at_ms"] <= pos:
            action = pending.pop(0)
            emit("action", audio_ms=pos, **action)
            act(action)
        delay = start + n * chunk_ms / 1000.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield chunk
    for action in pending:
        emit("action", audio_ms=len(chunks) * chunk_ms, **action)
        act(action)


def run(main) -> None:
    """Run main(); on a driver bug, report it and exit at once (the SDKs' non-daemon threads
    would otherwise keep the process alive)."""
    import os
    import traceback
    try:
        main()
    except BaseException:
        emit("driver_error", traceback=traceback.format_exc())
        sys.stdout.flush()
        os._exit(3)
    sys.stdout.flush()
    os._exit(0)
