"""Who is speaking: display names for the engine's speaker labels, renames kept for the session,
and the run's record of which final belongs to whom (so a later revision moves the right line).

Labels come from the server ("A", "B", …; "UNKNOWN" for turns too short to tell). ``UNKNOWN``
and no label show no name: a wrong name is worse than none. With both sources the microphone is
the user ("You") and only the system audio is diarized.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict

UNKNOWN = "UNKNOWN"
YOU = "You"
MAX_NAME_CHARS = 40
MIC_SOURCES = ("mic",)


def clean_name(name: str) -> str:
    """A display name as typed → one tidy line; ``ValueError`` in plain words if unusable."""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c
                   for c in unicodedata.normalize("NFC", str(name)))
    text = " ".join(text.split())
    if not text:
        raise ValueError("A speaker name cannot be empty.")
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"A speaker name may be at most {MAX_NAME_CHARS} characters.")
    return text


def label_key(label: str | None) -> str | None:
    """The label a rename applies to: "a", " B " and "Speaker B" all mean B."""
    if label is None:
        return None
    text = " ".join(str(label).split())
    if text.lower().startswith("speaker "):
        text = text[8:].strip()
    if not text or text.upper() == UNKNOWN:
        return None
    return text.upper() if len(text) <= 2 else text


class SpeakerNames:
    """Display names for one run (thread-safe: engines call from their own threads)."""

    def __init__(self, *, mic_is_you: bool = False, history_limit: int = 20000) -> None:
        self.mic_is_you = mic_is_you
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()
        # final id → (label, source); bounded so a day-long run does not grow without limit.
        self._finals: OrderedDict[int, tuple[str | None, str | None]] = OrderedDict()
        self._limit = history_limit

    # ---- names ---------------------------------------------------------------------------
    def rename(self, label: str, name: str) -> str:
        """``rename("A", "Dana")``: "Speaker A" reads "Dana" from now on, for this session."""
        key = label_key(label)
        if key is None:
            raise ValueError("Only a labelled speaker (A, B, …) can be renamed.")
        clean = clean_name(name)
        with self._lock:
            self._names[key] = clean
        return clean

    def reset(self) -> None:
        """A new session: names and the record of finals start over (renames are per session)."""
        with self._lock:
            self._names.clear()
            self._finals.clear()

    def forget(self, label: str) -> None:
        with self._lock:
            self._names.pop(label_key(label) or "", None)

    @property
    def renames(self) -> dict[str, str]:
        with self._lock:
            return dict(self._names)

    def display(self, label: str | None, source: str | None = None) -> str | None:
        """What to show before a caption; None = show no name."""
        if self.mic_is_you and source in MIC_SOURCES:
            return YOU
        key = label_key(label)
        if key is None:
            return None
        with self._lock:
            return self._names.get(key, f"Speaker {key}")

    # ---- finals and revisions -------------------------------------------------------------
    def note_final(self, final_id: int, label: str | None, source: str | None = None) -> None:
        with self._lock:
            self._finals[final_id] = (label, source)
            while len(self._finals) > self._limit:
                self._finals.popitem(last=False)

    def revise(self, final_id: int, label: str | None) -> tuple[str | None, str | None] | None:
        """Record a revision; returns (old label, new label), or None if it changes nothing
        (an unknown final, the same label, or the microphone, which is never diarized)."""
        with self._lock:
            known = self._finals.get(final_id)
            if known is None or known[0] == label:
                return None
            if self.mic_is_you and known[1] in MIC_SOURCES:
                return None
            self._finals[final_id] = (label, known[1])
            return known[0], label

    def label_of(self, final_id: int) -> str | None:
        with self._lock:
            known = self._finals.get(final_id)
        return known[0] if known else None
