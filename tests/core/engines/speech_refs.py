"""Reference sentences and WER helper for the real-model tests (jiwer on normalised text)."""

from __future__ import annotations

import re

import jiwer

SENTENCES = (
    "The quarterly budget review starts at nine tomorrow morning.",
    "Please send the updated slides to everyone before the meeting.",
    "Our customers want captions that are easy to read from across the room.",
)

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen " \
        "fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _spell(n: int) -> str:
    """0-999 in words, so "200" and "two hundred" compare equal."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _spell(rest))


def normalise(text: str) -> str:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return " ".join(_spell(int(w)) if w.isdigit() and len(w) <= 3 else w for w in words)


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>")
