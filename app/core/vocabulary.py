"""Custom vocabulary (v2 ``word_boost`` / v3 ``keyterms_prompt``): parsing, cleaning, limit checks.

Pure Python, no Qt: the vocabulary editor renders what ``check`` returns.

Rules (the README documents them for users):
- One term per line. A comma also separates terms, so pasting ``foo, bar baz`` gives two terms.
  A term that contains a comma goes in double quotes (``"Smith, John"``); a quote inside an
  unquoted term is kept as it is (``5" screen``). The editor, the settings file, ``--vocabulary``
  and the headless ``vocabulary`` command all use this one parser.
- Each term is stripped; runs of inner whitespace become one space; blank terms are dropped.
- Text is NFC-normalised, so an accented letter typed as letter + combining mark counts once.
- Duplicates are dropped case-insensitively; the first spelling is kept.

What is counted:
- v2 (legacy real-time, ``word_boost``): AssemblyAI allows "up to 2500 characters of vocabulary".
  We count the **sum of the terms' lengths in characters** (Unicode code points after the cleaning
  above). Separators, JSON quotes and brackets of the wire form are not counted. 2500 passes,
  2501 does not.
- v3 (Universal-Streaming, ``keyterms_prompt``): at most 100 terms, each at most 50 characters.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

V2_MAX_CHARS = 2500
V3_MAX_TERMS = 100
V3_MAX_TERM_CHARS = 50

_LINES = re.compile(r"[\n\r\u2028\u2029]")
_INNER_SPACE = re.compile(r"\s+")


def normalise_term(term: str) -> str:
    """One term as it will be sent: NFC, stripped, inner whitespace collapsed."""
    return _INNER_SPACE.sub(" ", unicodedata.normalize("NFC", term)).strip()


def split_terms(text: str) -> list[str]:
    """Split editor, pasted or command-line text on newlines and commas (no cleaning).

    CSV rules per line, so a quoted term keeps its commas; a stray quote never raises."""
    terms: list[str] = []
    for line in _LINES.split(text or ""):
        if not line.strip():
            continue
        try:
            rows = list(csv.reader([line], skipinitialspace=True, strict=True))
        except csv.Error:       # unbalanced quote: fall back to plain comma splitting
            rows = [line.split(",")]
        terms.extend(rows[0] if rows else [])
    return terms


def clean_terms(terms: Iterable[str]) -> list[str]:
    """Normalise, drop blanks, drop case-insensitive duplicates keeping the first spelling."""
    seen: set[str] = set()
    result: list[str] = []
    for raw in terms:
        term = normalise_term(raw)
        if not term:
            continue
        folded = term.casefold()
        if folded in seen:
            continue
        seen.add(folded)
        result.append(term)
    return result


def parse_text(text: str) -> list[str]:
    """Editor text → the clean list of terms."""
    return clean_terms(split_terms(text))


def format_terms(terms: Iterable[str]) -> str:
    """The list → editor text, one term per line (quoted where a comma would split it)."""
    return "\n".join(_quoted(t) for t in terms)


def _quoted(term: str) -> str:
    if "," in term or term.startswith('"'):
        return '"' + term.replace('"', '""') + '"'
    return term


def v2_character_count(terms: Iterable[str]) -> int:
    """What counts against v2's 2500-character limit: the sum of the terms' lengths."""
    return sum(len(t) for t in terms)


@dataclass(frozen=True)
class VocabularyCheck:
    ok: bool
    counter: str            # e.g. "120 / 2500 characters" or "7 / 100 terms, longest 12 / 50 characters"
    reason: str             # empty when ok; otherwise why it is over the limit, in plain words
    terms: tuple[str, ...]
    used: int               # characters (v2) or terms (v3)
    limit: int


def check(terms: Iterable[str], protocol: str) -> VocabularyCheck:
    """Check already-cleaned terms against ``protocol``'s limit ("v2" or "v3")."""
    terms = tuple(terms)
    if protocol == "v2":
        used = v2_character_count(terms)
        counter = f"{used} / {V2_MAX_CHARS} characters"
        reason = ""
        if used > V2_MAX_CHARS:
            reason = (f"{used - V2_MAX_CHARS} characters over the limit: the legacy v2 protocol "
                      f"accepts at most {V2_MAX_CHARS} characters of vocabulary in total.")
        return VocabularyCheck(not reason, counter, reason, terms, used, V2_MAX_CHARS)
    if protocol == "v3":
        used = len(terms)
        longest = max((len(t) for t in terms), default=0)
        counter = (f"{used} / {V3_MAX_TERMS} terms, longest {longest} / {V3_MAX_TERM_CHARS} "
                   f"characters")
        problems = []
        if used > V3_MAX_TERMS:
            problems.append(f"{used - V3_MAX_TERMS} terms too many: Universal-Streaming (v3) "
                            f"accepts at most {V3_MAX_TERMS} terms.")
        too_long = [t for t in terms if len(t) > V3_MAX_TERM_CHARS]
        if too_long:
            first = too_long[0]
            shown = first if len(first) <= 30 else first[:27] + "..."
            more = f" (and {len(too_long) - 1} more)" if len(too_long) > 1 else ""
            problems.append(f"The term \u201c{shown}\u201d has {len(first)} characters{more}: "
                            f"v3 allows at most {V3_MAX_TERM_CHARS} characters per term.")
        reason = " ".join(problems)
        return VocabularyCheck(not reason, counter, reason, terms, used, V3_MAX_TERMS)
    raise ValueError(f"Unknown protocol {protocol!r}; choose v3 or v2.")


def require_within_limits(terms: Iterable[str], protocol: str) -> tuple[str, ...]:
    """Clean ``terms`` and return them, or raise ``ValueError`` saying which limit they break."""
    result = check(clean_terms(terms), protocol)
    if not result.ok:
        raise ValueError(result.reason)
    return result.terms
