"""Reference sentences and WER helper for the real-model tests (jiwer on normalised text)."""

from __future__ import annotations

import re

import jiwer

SENTENCES = (
    "The quarterly budget review starts at nine tomorrow morning.",
    "Please send the updated slides to everyone before the meeting.",
    "Our customers want captions that are easy to read from across the room.",
)

_NUMBERS = {"9": "nine", "nine": "nine"}


def normalise(text: str) -> str:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return " ".join(_NUMBERS.get(w, w) for w in words)


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>")
