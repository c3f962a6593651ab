"""Transcript export: plain text, SubRip (SRT) and WebVTT from transcript entries.

Cue times come from the finals' audio offsets, which the pipeline keeps continuous across
reconnects, so a cue's time is its place in the whole session's audio. The cue list is made
valid whatever the input: times clamped at 0, cues sorted into a monotonic, non-overlapping
sequence (an overlapping cue starts where the previous one ended), every cue at least 1 ms long,
no blank line inside a cue (it would end the cue), and WebVTT text escaped (``&``, ``<``, ``>`` —
which also rules out ``-->`` in cue text).

Speakers: revisions recorded in the transcript are applied first (``resolve_speakers``), so a
re-labelled line is exported under its right speaker: SRT cues start with "Name: ", WebVTT cues
carry a voice span ``<v Name>`` and, when languages were detected, a ``<lang xx>`` span; plain
text shows the name and the language code.

Translations (``translation`` records, paired with their finals by id) are exported with their
caption: ``content="both"`` puts the translation on the line(s) after the original in the same
cue (bilingual subtitles), ``"translation"`` writes the translation only — a caption that was
never translated keeps its original text, so nothing said is missing — and ``"original"`` leaves
translations out.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from app.core.private_files import write_private
from app.core.transcript import Entry, attach_translations, resolve_speakers

FORMATS = {"txt": "Plain text", "srt": "SubRip subtitles", "vtt": "WebVTT subtitles"}
CONTENTS = ("both", "original", "translation")

# A new pipeline (or a resumed session) in the same file restarts stream time at 0; a jump back
# this large for one source is treated as a new timeline that continues after the previous one.
_TIMELINE_RESET_MS = 5000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")     # a BCP 47 tag, nothing else


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]         # non-empty, no blank lines, no line breaks inside
    source: str = ""
    speaker: str = ""              # display name ("" = none)
    language: str | None = None
    translation: tuple[str, ...] = ()    # bilingual cues: the translated lines
    translation_language: str | None = None


def has_translations(entries: Iterable[Entry]) -> bool:
    return any(e.kind == "translation" and e.text.strip() for e in entries) or any(
        e.kind == "final" and e.translation for e in entries)


def _prepare(entries: Iterable[Entry], content: str) -> list[Entry]:
    if content not in CONTENTS:
        raise ValueError(f"Unknown export content {content!r}; choose both, original or "
                         f"translation.")
    return attach_translations(resolve_speakers(entries))


def clean_lines(text: str) -> tuple[str, ...]:
    """Caption text → display lines: control characters removed, blank lines dropped."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\u2028", "\n").replace("\u2029", "\n").replace("\x85", "\n")
    return tuple(line.strip() for line in text.split("\n") if line.strip())


def _label(source: str) -> str:
    return " ".join(_CONTROL.sub("", source).split())


def _who(cue: "Cue", show_source: bool) -> str:
    """What precedes a cue: the speaker's name, else (with several sources) the source label."""
    if cue.speaker:
        return _label(cue.speaker)
    return _label(cue.source) if show_source else ""


def _language_changes(cues: Sequence["Cue"]) -> list[bool]:
    marks, last = [], None
    for cue in cues:
        lang = (cue.language or "").lower() or None
        marks.append(lang is not None and last is not None and lang != last)
        if lang is not None:
            last = lang
    return marks


def _use_labels(entries: Sequence[Entry], labels: bool | None) -> bool:
    if labels is not None:
        return labels
    return len({e.source for e in entries if e.kind == "final" and e.source}) > 1


def build_cues(entries: Iterable[Entry], content: str = "both") -> list[Cue]:
    """Finals → a valid, monotonic, non-overlapping cue list (see the module docstring)."""
    offset: dict[str, int] = {}     # per source: added to restart a timeline after a reset
    last_end: dict[str, int] = {}
    timed: list[tuple[int, int, int, Entry]] = []
    for order, entry in enumerate(e for e in entries if e.kind == "final"):
        lines = clean_lines(entry.text)
        if not lines:
            continue
        start = max(0, int(entry.audio_start))
        end = max(start, int(entry.audio_end))
        src = entry.source
        if src in last_end and start + offset.get(src, 0) < last_end[src] - _TIMELINE_RESET_MS:
            offset[src] = last_end[src] - start
        start += offset.get(src, 0)
        end += offset.get(src, 0)
        last_end[src] = max(last_end.get(src, 0), end)
        timed.append((start, order, end, entry))
    timed.sort(key=lambda t: (t[0], t[1]))   # by time; file order breaks ties
    cues: list[Cue] = []
    previous_end = 0
    for start, _order, end, entry in timed:
        start = max(start, previous_end)
        end = max(end, start + 1)
        lines, language = clean_lines(entry.text), entry.language
        translated = clean_lines(entry.translation) if content != "original" else ()
        tr_language = entry.translation_language or None
        if content == "translation" and translated:
            lines, language, translated = translated, tr_language, ()
        cues.append(Cue(start, end, lines, entry.source, entry.speaker_name, language,
                        translated, tr_language))
        previous_end = end
    return cues


def format_timestamp(ms: int, separator: str) -> str:
    """``HH:MM:SS<sep>mmm`` (hours grow past two digits rather than wrap)."""
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_annotation(label: str) -> str:
    # A voice annotation ends at ">"; keep it one plain line.
    return " ".join(vtt_escape(label).split())


def to_srt(entries: Iterable[Entry], *, labels: bool | None = None, content: str = "both") -> str:
    entries = _prepare(entries, content)
    show = _use_labels(entries, labels)
    blocks = []
    cues = build_cues(entries, content)
    for index, (cue, changed) in enumerate(zip(cues, _language_changes(cues)), start=1):
        lines = list(cue.lines)
        if changed:
            lines[0] = f"[{_label(cue.language).upper()}] {lines[0]}"
        who = _who(cue, show)
        if who:
            lines[0] = f"{who}: {lines[0]}"
        lines.extend(cue.translation)
        # SubRip has no escaping: an arrow in the text could be taken for a timing line.
        lines = [line.replace("-->", "→") for line in lines]
        blocks.append(f"{index}\n{format_timestamp(cue.start_ms, ',')} --> "
                      f"{format_timestamp(cue.end_ms, ',')}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def to_vtt(entries: Iterable[Entry], *, labels: bool | None = None, content: str = "both") -> str:
    entries = _prepare(entries, content)
    show = _use_labels(entries, labels)
    out = ["WEBVTT\n"]
    cues = build_cues(entries, content)
    gaps = sorted((e for e in entries if e.kind == "gap"), key=lambda e: e.start_ms)
    gi = 0
    for cue in cues:
        while gi < len(gaps) and gaps[gi].start_ms <= cue.start_ms:
            out.append(_vtt_gap_note(gaps[gi]))
            gi += 1
        text = [vtt_escape(line) for line in cue.lines]
        if cue.language and _LANG.match(cue.language):
            text[0] = f"<lang {cue.language}>{text[0]}"
            text[-1] = f"{text[-1]}</lang>"
        who = _who(cue, show)
        if who:
            text[0] = f"<v {_vtt_annotation(who)}>{text[0]}"
        if cue.translation:
            extra = [vtt_escape(line) for line in cue.translation]
            if cue.translation_language and _LANG.match(cue.translation_language):
                extra[0] = f"<lang {cue.translation_language}>{extra[0]}"
                extra[-1] = f"{extra[-1]}</lang>"
            text.extend(extra)
        out.append(f"{format_timestamp(cue.start_ms, '.')} --> {format_timestamp(cue.end_ms, '.')}\n"
                   + "\n".join(text) + "\n")
    out.extend(_vtt_gap_note(g) for g in gaps[gi:])
    return "\n".join(out)


def _vtt_gap_note(gap: Entry) -> str:
    reason = " ".join(gap.reason.replace("-->", "→").split())
    words = f"gap of {gap.duration_ms / 1000:.1f} s at {format_timestamp(gap.start_ms, '.')}"
    return f"NOTE {words}{' (' + reason + ')' if reason else ''}\n"


def to_txt(entries: Iterable[Entry], *, labels: bool | None = None, content: str = "both") -> str:
    """One line per final: ``[wall-clock time] label: text``; gaps and reconnects as notes;
    a translation indented on the line after its caption."""
    entries = _prepare(entries, content)
    show = _use_labels(entries, labels)
    lines = []
    for e in entries:
        if e.kind == "header":
            started = _dt.datetime.fromtimestamp(e.wall).strftime("%Y-%m-%d %H:%M:%S") if e.wall else "?"
            lines.append(f"Transcript started {started}")
        elif e.kind == "final":
            text = " ".join(clean_lines(e.text))
            translated = " ".join(clean_lines(e.translation)) if content != "original" else ""
            language = e.language
            if content == "translation" and translated:
                text, language, translated = translated, e.translation_language or None, ""
            if not text:
                continue
            who = _label(e.speaker_name) or (_label(e.source) if show else "")
            lang = f" ({_label(language)})" if language else ""
            prefix = f"{who}{lang}: " if who else (f"({_label(language)}) " if language else "")
            lines.append(f"[{_clock(e.wall)}] {prefix}{text}")
            if translated:
                lines.append(f"    {translated}")
        elif e.kind == "gap":
            reason = f" — {e.reason}" if e.reason else ""
            lines.append(f"[{_clock(e.wall)}] (no captions for {e.duration_ms / 1000:.1f} s{reason})")
    return "\n".join(lines) + ("\n" if lines else "")


def _clock(wall: float) -> str:
    return _dt.datetime.fromtimestamp(wall).strftime("%H:%M:%S") if wall else "--:--:--"


_WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt}


def render(entries: Iterable[Entry], fmt: str, *, labels: bool | None = None,
           content: str = "both") -> str:
    try:
        writer = _WRITERS[fmt]
    except KeyError:
        raise ValueError(f"Unknown export format {fmt!r}; choose txt, srt or vtt.") from None
    return writer(entries, labels=labels, content=content)


def export(entries: Iterable[Entry], path: Path | str, fmt: str | None = None, *,
           labels: bool | None = None, content: str = "both") -> Path:
    """Write entries to ``path`` in ``fmt`` (default: from the file extension). UTF-8, LF endings.

    Written to a temporary file and renamed, so a failed export never leaves half a file
    in place of a good one; the file is private (0600) like the transcript it came from. Raises ``ValueError`` for an unknown format, ``OSError`` for I/O.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    text = render(entries, fmt, labels=labels, content=content)
    return write_private(path, text.encode("utf-8", "replace"))
