"""Where the loopback server's transcript text comes from, and how it is shaped on the wire.

Order of preference for an utterance's final text: the test's script (one entry per
utterance, shared by all sessions in order), else the pluggable ``transcriber(pcm16, rate)``,
else a deterministic "utterance N".

A script entry is the final text, or a dict ``{"text", "speaker", "language", "revise",
"translation"}``: ``speaker`` is the v3 label ("A", "B", … "UNKNOWN"; default "A"), ``language``
the detected code (default "en"), ``revise`` a list of ``[turns_back, label]`` sent as one
SpeakerRevision right after this final (0 = this very turn), ``translation`` the LLM gateway text,
``translation_delay_ms`` how long after the final its LLMGatewayResponse is sent (so answers come
late and out of order), ``translation_error`` a failed answer instead: ``"no_choices"`` (a
completion with an empty ``choices``) or any other text (``data.error.message``).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Callable, Iterable

Transcriber = Callable[[bytes, int], str]

_NOT_WORD = re.compile(r"[^\w\s']+", re.UNICODE)


def unformat(text: str) -> str:
    """Formatted text → what an unformatted transcript looks like: lower case, no punctuation."""
    return " ".join(_NOT_WORD.sub(" ", text).lower().split())


def partial_words(final_text: str, speech_ms: int, ms_per_word: int = 300) -> list[str]:
    """A growing prefix of the (unformatted) final text for a partial after ``speech_ms`` of speech.

    Never the whole text of a multi-word utterance: the last word arrives with the final.
    """
    words = unformat(final_text).split()
    if not words:
        return []
    count = 1 + max(0, speech_ms) // ms_per_word
    return words[: max(1, min(count, len(words) - 1))]


def spread_words(words: list[str], start_ms: int, end_ms: int) -> list[tuple[str, int, int]]:
    """Word timings spread over [start_ms, end_ms], each word's share proportional to its length."""
    if not words:
        return []
    end_ms = max(end_ms, start_ms + len(words))
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    span = end_ms - start_ms
    out, acc = [], 0
    for word, weight in zip(words, weights):
        s = start_ms + span * acc // total
        acc += weight
        e = start_ms + span * acc // total
        out.append((word, int(s), int(max(e, s + 1))))
    return out


ENTRY_KEYS = {"text", "speaker", "language", "revise", "translation", "translation_delay_ms",
              "translation_error"}


def split_entry(entry) -> tuple[str | None, dict]:
    """A script entry → (final text, metadata)."""
    if entry is None:
        return None, {}
    if isinstance(entry, str):
        return entry, {}
    meta = dict(entry)
    return str(meta.pop("text")), meta


def check_entry(entry) -> None:
    if isinstance(entry, str):
        return
    if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
        raise TypeError(f"a script entry is a string or a dict with 'text', not {entry!r}")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise TypeError(f"unknown script entry keys: {', '.join(sorted(unknown))}")


class TextSource:
    """Hands out final texts. A session reserves the next script entry when an utterance starts
    and either commits it (the final was sent) or returns it (the session died first), so a
    reconnecting client still gets the script in order."""

    def __init__(self, script: Iterable = ()) -> None:
        self._lock = threading.Lock()
        script = list(script)
        for entry in script:
            check_entry(entry)
        self._script: deque = deque(script)
        self._fallback = 0
        self.transcriber: Transcriber | None = None

    def set_script(self, texts: Iterable) -> None:
        texts = list(texts)
        for entry in texts:
            check_entry(entry)
        with self._lock:
            self._script = deque(texts)

    def remaining(self) -> list[str]:
        with self._lock:
            return [split_entry(e)[0] for e in self._script]

    def reserve(self):
        """The next script text, taken out of the queue (None when the script is exhausted)."""
        with self._lock:
            return self._script.popleft() if self._script else None

    def give_back(self, text) -> None:
        with self._lock:
            self._script.appendleft(text)

    def fallback(self) -> str:
        with self._lock:
            self._fallback += 1
            return f"utterance {self._fallback}"
