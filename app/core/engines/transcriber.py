"""OfflineTranscriber: one utterance of PCM16 → text, for the loopback AssemblyAI-compatible server.

The server does its own endpointing and hands over whole utterances; this turns them into real
transcripts with the shared offline model (so demos and end-to-end tests need no script).
Long audio is split at pauses by the same segmenter the live engine uses.
"""

from __future__ import annotations

import threading

import numpy as np

from app.core.audio.convert import Resampler
from app.core.engines import models
from app.core.engines.segmenter import MAX_UTTERANCE_S, Segmenter
from app.core.engines.vad import SAMPLE_RATE


class OfflineTranscriber:
    """``transcriber(pcm16, sample_rate) -> str``; thread-safe (decodes are serialised so two
    server sessions do not fight over the two cores)."""

    def __init__(self, recognizer: "models.Recognizer | None" = None, preferred: str | None = None) -> None:
        self._recognizer = recognizer if recognizer is not None else models.get_recognizer(preferred)
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._recognizer.name

    def __call__(self, pcm16: bytes, sample_rate: int) -> str:
        if not 8000 <= int(sample_rate) <= 48000:
            raise ValueError(f"Sample rate {sample_rate} Hz is outside 8000-48000 Hz.")
        data = bytes(pcm16)
        if len(data) % 2:
            data = data[:-1]
        samples = np.frombuffer(data, dtype="<i2").astype(np.float64)
        if int(sample_rate) != SAMPLE_RATE:
            rs = Resampler(int(sample_rate), SAMPLE_RATE)
            samples = np.concatenate((rs.process(samples), rs.flush()))
        audio = (samples / 32768.0).astype(np.float32)
        if len(audio) < SAMPLE_RATE // 20:
            return ""
        with self._lock:
            if len(audio) <= MAX_UTTERANCE_S * SAMPLE_RATE:
                return self._recognizer.transcribe(audio)
            seg = Segmenter(silence_ms=300)
            pieces = [u.audio for u in seg.feed(audio)]
            last = seg.flush()
            if last is not None:
                pieces.append(last.audio)
            texts = [self._recognizer.transcribe(p) for p in pieces]
        return " ".join(t for t in texts if t)
