"""Vocabulary for engines that cannot be biased: fix the spelling of terms they did hear.

"kubernetes" → "Kubernetes", "assembly ai" → "AssemblyAI": a term matches when its letters and
digits, ignoring case, spaces and hyphens, equal those of a run of 1-3 consecutive words.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[\w'’-]+|[^\w\s]+|\s+")


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def apply_vocabulary(text: str, terms) -> str:
    if not text or not terms:
        return text
    wanted = {_key(t): t for t in terms if _key(t)}
    if not wanted:
        return text
    tokens = _WORD.findall(text)
    words = [i for i, tok in enumerate(tokens) if _key(tok) and not tok.isspace()]
    out = list(tokens)
    i = 0
    while i < len(words):
        for span in (3, 2, 1):
            if i + span > len(words):
                continue
            first, last = words[i], words[i + span - 1]
            # Only words joined by spaces or hyphens make one term; punctuation breaks it.
            between = tokens[first:last + 1]
            if any(not (_key(t) or t.isspace() or t == "-") for t in between):
                continue
            key = "".join(_key(t) for t in between)
            if key in wanted:
                out[first] = wanted[key]
                for j in range(first + 1, last + 1):
                    out[j] = ""
                i += span
                break
        else:
            i += 1
    return "".join(out)
