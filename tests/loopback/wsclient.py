"""A minimal raw WebSocket client for the server's own tests (websocket-client, no app code)."""

from __future__ import annotations

import json
import threading
import time
import wave
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import websocket

from app.core.audio.convert import mulaw_encode


class RawClient:
    """Connects, collects every server message on a reader thread, and records the close."""

    def __init__(self, server, protocol: str = "v3", *, params: dict | None = None,
                 key: str | None = "default", token: str | None = None, header_token: str | None = None) -> None:
        params = dict(params or {})
        if token is not None:
            params["token"] = token
        url = server.ws_url(protocol) + ("?" + urlencode(params) if params else "")
        headers = []
        if key == "default":
            key = server.api_key
        if header_token is not None:
            headers.append(f"Authorization: {header_token}")
        elif key is not None:
            headers.append(f"Authorization: {key}")
        self.messages: list[dict] = []
        self.raw: list[str] = []
        self.pongs: list[bytes] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = threading.Event()
        self.ws = websocket.create_connection(url, header=headers, timeout=10)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    if len(data) >= 2:
                        self.close_code = int.from_bytes(data[:2], "big")
                        self.close_reason = data[2:].decode("utf-8", "replace")
                    else:
                        self.close_code = 1005
                    try:   # echo the close, then hang up like a real client does
                        self.ws.send_close(self.close_code if self.close_code != 1005 else 1000)
                        self.ws.shutdown()
                    except Exception:
                        pass
                    break
                if opcode == websocket.ABNF.OPCODE_PONG:
                    self.pongs.append(bytes(data))
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    text = data.decode("utf-8")
                    self.raw.append(text)
                    try:
                        self.messages.append(json.loads(text))
                    except ValueError:
                        self.messages.append({"_raw": text})
        except Exception as exc:   # dropped connection, timeout
            if self.close_code is None:
                self.close_code = 1006
                self.close_reason = repr(exc)
        finally:
            self.closed.set()

    # ---- sending ---------------------------------------------------------------------------------
    def send_json(self, message) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def send_audio(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def stream(self, pcm16: np.ndarray, rate: int, *, chunk_ms: int = 100, realtime: float = 0.0,
               encoding: str = "pcm_s16le") -> None:
        """Send PCM16 mono in chunks; ``realtime`` = speed factor for pacing (0 = as fast as possible)."""
        step = rate * chunk_ms // 1000
        start = time.monotonic()
        sent = 0
        for i in range(0, len(pcm16), step):
            chunk = pcm16[i:i + step]
            if len(chunk) < step:       # keep the last frame within the limits: pad with silence
                chunk = np.concatenate((chunk, np.zeros(step - len(chunk), dtype=np.int16)))
            data = mulaw_encode(chunk).tobytes() if encoding == "pcm_mulaw" else chunk.astype("<i2").tobytes()
            if self.closed.is_set():
                return
            try:
                self.send_audio(data)
            except Exception:
                return
            sent += len(chunk)
            if realtime:
                ahead = sent / rate / realtime - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    # ---- waiting ---------------------------------------------------------------------------------
    def wait(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        return self.closed.wait(timeout)

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("message_type") == kind or m.get("type") == kind]

    def finals(self) -> list[str]:
        out = []
        for m in self.messages:
            if m.get("message_type") == "FinalTranscript":
                out.append(m["text"])
            elif m.get("type") == "Turn" and m.get("end_of_turn"):
                out.append(m)
        # v3: one entry per turn, the formatted one when present
        result, turns = [], {}
        for m in out:
            if isinstance(m, str):
                result.append(m)
            else:
                turns[m["turn_order"]] = m["transcript"] if (m["turn_is_formatted"] or m["turn_order"] not in turns) else turns[m["turn_order"]]
        return result + [turns[k] for k in sorted(turns)]

    def close(self, code: int = 1000) -> None:
        """Client-initiated close handshake (the reader thread sees the server's reply)."""
        if not self.closed.is_set():
            try:
                self.ws.send_close(code)
            except Exception:
                pass
            self.closed.wait(3)
        try:
            self.ws.shutdown()
        except Exception:
            pass
        self._thread.join(5)


def tone_speech(segments: list[tuple[str, float]], rate: int = 16000, amplitude: int = 8000) -> np.ndarray:
    """Synthetic audio: [("speech", 0.8), ("silence", 0.5), ...] → int16 (speech = a 300 Hz buzz)."""
    parts = []
    for kind, seconds in segments:
        n = int(rate * seconds)
        if kind == "speech":
            t = np.arange(n) / rate
            parts.append((amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16))
        else:
            parts.append(np.zeros(n, dtype=np.int16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()
