"""What the history window shows, without Qt: the live session or a past one, search, copy, export.

The window only renders ``rows()`` and forwards clicks here, so all of this is tested with
plain pytest.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from app.core import export as _export
from app.core.events import Final, Gap, Revision, Translation
from app.core.speakers import SpeakerNames
from app.core.transcript import (Entry, SessionInfo, attach_translations, list_sessions,
                                 read_transcript, resolve_speakers)


@dataclass(frozen=True)
class Row:
    index: int           # position in the view's entries
    time_text: str       # wall clock, HH:MM:SS
    source: str
    text: str            # caption text, or the gap description
    kind: str            # "final" | "gap"
    stream_ms: int       # where in the session's audio it is
    speaker: str = ""    # display name of who said it ("" = not known)
    language: str = ""   # detected language code
    translation: str = ""  # the live translation, shown under the caption ("" = none)


def describe_gap(entry: Entry) -> str:
    reason = f" ({entry.reason})" if entry.reason else ""
    return f"— no captions for {entry.duration_ms / 1000:.1f} s{reason} —"


ENGINE_TITLES = {"local": "offline engine", "v3": "AssemblyAI", "v2": "AssemblyAI (legacy v2)"}


def session_title(info: SessionInfo) -> str:
    when = _dt.datetime.fromtimestamp(info.started).strftime("%Y-%m-%d %H:%M") if info.started else "?"
    engine = ENGINE_TITLES.get(info.protocol, info.protocol or "?")
    model = getattr(info, "model", "")
    parts = [when, engine, model, info.source or "",
             f"{info.finals} caption{'s' * (info.finals != 1)}"]
    return " · ".join(p for p in parts if p)


def live_entry(event, source: str, wall: float, names: SpeakerNames | None = None) -> Entry | None:
    """The history entry for a live event (None when history does not show it)."""
    if isinstance(event, Final):
        if not event.text.strip():
            return None
        name = names.display(event.speaker, source) if names is not None else None
        return Entry("final", wall=wall, source=source, text=event.text,
                     audio_start=event.audio_start, audio_end=event.audio_end,
                     final_id=event.id, speaker=event.speaker, language=event.language,
                     speaker_name=name or "")
    if isinstance(event, Gap):
        return Entry("gap", wall=wall, source=source, start_ms=event.start_ms,
                     duration_ms=event.duration_ms, reason=event.reason)
    return None


class LiveRecord:
    """The running sitting's finals and gaps, from its first caption, fed the same events as the
    transcript. It lives as long as the app, so a history window opened mid-meeting shows
    everything said so far. A restart within a sitting (new settings, a retried failure) keeps
    the record; a fresh start after the user stopped begins a new one.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 names: SpeakerNames | None = None) -> None:
        self._clock = clock
        self.entries: list[Entry] = []
        self.index: dict[int, int] = {}    # final id → position in entries (revisions)
        self.files: list[Path] = []        # transcript files written during this sitting
        self.running = False
        self.names = names or SpeakerNames()    # the run's display names (renames included)

    def begin(self, *, keep: bool = False) -> None:
        if not keep:
            self.entries = []
            self.index = {}
            self.files = []
        self.running = True

    def add_file(self, path: Path | None) -> None:
        if path is not None and Path(path) not in self.files:
            self.files.append(Path(path))

    def end(self) -> None:
        self.running = False

    def add(self, event, source: str = "") -> Entry | None:
        """Record a live event; returns the new entry (None for none, and for a revision, which
        moves an earlier line to its right speaker in place)."""
        if isinstance(event, Revision):
            self.revise(event)
            return None
        if isinstance(event, Translation):
            self.translate(event)
            return None
        entry = live_entry(event, source, self._clock(), self.names)
        if entry is not None:
            if entry.kind == "final":
                self.index[entry.final_id] = len(self.entries)
            self.entries.append(entry)
        return entry


    def translate(self, event: Translation) -> int | None:
        """Put a translation under its caption; returns the position of that line (None: none)."""
        index = self.index.get(event.id)
        if index is None or index >= len(self.entries):
            return None
        self.entries[index] = replace(self.entries[index], translation=event.text,
                                      translation_language=event.language)
        self.entries.append(Entry("translation", wall=self._clock(),
                                  source=self.entries[index].source, final_id=event.id,
                                  language=event.language, text=event.text))
        return index

    def revise(self, event: Revision) -> int | None:
        """Apply a revision; returns the position of the line it changed (None: none)."""
        index = self.index.get(event.id)
        if index is None or index >= len(self.entries):
            return None
        entry = self.entries[index]
        if entry.speaker == event.speaker:
            return None
        self.entries[index] = replace(
            entry, speaker=event.speaker,
            speaker_name=self.names.display(event.speaker, entry.source) or "")
        self.entries.append(Entry("revision", wall=self._clock(), source=entry.source,
                                  final_id=event.id, speaker=event.speaker))
        return index


class HistoryModel:
    """Entries of the view being shown (live or a past file) and the operations on them."""

    def __init__(self, transcript_dir: Path, *, clock: Callable[[], float] = time.time,
                 record: LiveRecord | None = None) -> None:
        self.transcript_dir = Path(transcript_dir)
        self._clock = clock
        # Without a shared record (no running app) the model keeps its own.
        self.record = record if record is not None else LiveRecord(clock=clock)
        self._owns_record = record is None
        self.viewing: Path | None = None        # None = the live session
        self._past: list[Entry] = []

    # -- what is shown ------------------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        return self.viewing is None

    @property
    def live(self) -> list[Entry]:
        return self.record.entries

    @property
    def names(self) -> SpeakerNames:
        """The live session's names (renames kept for it)."""
        return self.record.names

    @property
    def entries(self) -> list[Entry]:
        return self.live if self.is_live else self._past

    def add_live(self, event, source: str = "") -> Row | None:
        """A live event arrived; returns its new row (None when it is not shown in history).

        With a shared record the app has already recorded the event: the newest entry is it.
        """
        if self._owns_record:
            entry = self.record.add(event, source)
        else:
            entry = live_entry(event, source, 0.0)
            if entry is not None:
                if not self.live:
                    return None
                entry = self.live[-1]
        if entry is None:
            return None
        return self._row(len(self.live) - 1, entry)

    def revise_live(self, event: Revision) -> Row | None:
        """A revision moves a live line to its right speaker; returns the changed row."""
        return self._changed_live_row(event, self.record.revise)

    def translate_live(self, event: Translation) -> Row | None:
        """A translation arrived: the row of its caption, now with the translation under it."""
        return self._changed_live_row(event, self.record.translate)

    def _changed_live_row(self, event, apply) -> Row | None:
        # With a shared record the app has already applied the event: the row is read back.
        index = apply(event) if self._owns_record else self.record.index.get(event.id)
        if index is None or index >= len(self.live):
            return None
        return self._row(index, self.live[index])

    def rename(self, label: str, name: str) -> str:
        """"A is Dana" for the live session: every line of A now reads Dana. Raises
        ``ValueError`` in plain words for an unusable name."""
        clean = self.names.rename(label, name)
        self.live[:] = [replace(e, speaker_name=self.names.display(e.speaker, e.source) or "")
                        if e.kind == "final" else e for e in self.live]
        self.live.append(Entry("rename", wall=self._clock(), speaker=label, text=clean))
        return clean

    def speakers(self) -> list[tuple[str, str]]:
        """(label, display name) of the speakers in the view, in order of appearance."""
        seen: dict[str, str] = {}
        for e in self.entries:
            if e.kind == "final" and e.speaker and e.speaker_name and e.speaker not in seen:
                seen[e.speaker] = e.speaker_name
        return list(seen.items())

    def reset_live(self) -> None:
        if self._owns_record:
            self.record.begin()

    def show_live(self) -> None:
        self.viewing = None
        self._past = []

    def open_session(self, path: Path) -> None:
        """Show a past session. Raises ``OSError`` when the file cannot be read."""
        self._past = attach_translations(resolve_speakers(read_transcript(path)))
        self.viewing = Path(path)

    def sessions(self) -> list[SessionInfo]:
        """Saved sessions, without the one running now: that one is the live view."""
        live = {p.resolve() for p in self.record.files} if self.record.running else set()
        return [s for s in list_sessions(self.transcript_dir) if s.path.resolve() not in live]

    # -- rows, search, copy -------------------------------------------------------------------

    def _row(self, index: int, e: Entry) -> Row:
        when = _dt.datetime.fromtimestamp(e.wall).strftime("%H:%M:%S") if e.wall else "--:--:--"
        if e.kind == "gap":
            return Row(index, when, e.source, describe_gap(e), "gap", e.start_ms)
        return Row(index, when, e.source, e.text, "final", e.audio_start, e.speaker_name,
                   e.language or "", e.translation)

    def rows(self, query: str = "") -> list[Row]:
        """Finals and gaps of the view; with a query, only finals holding every word of it."""
        words = query.casefold().split()
        out = []
        for i, e in enumerate(self.entries):
            if e.kind not in ("final", "gap"):
                continue
            if words and (e.kind != "final" or not matches(e, words)):
                continue
            out.append(self._row(i, e))
        return out

    def copy_text(self, rows: list[Row], *, with_times: bool = True) -> str:
        """Rows → clipboard text, one per line."""
        lines = []
        for r in rows:
            label = f"{r.source}: " if r.source and self._several_sources() else ""
            if r.speaker:
                label = f"{r.speaker}: "
            lines.append(f"[{r.time_text}] {label}{r.text}" if with_times else f"{label}{r.text}")
            if r.translation:
                lines.append(f"    {r.translation}")
        return "\n".join(lines)

    def _several_sources(self) -> bool:
        return len({e.source for e in self.entries if e.kind == "final" and e.source}) > 1

    def summary(self) -> str:
        finals = sum(1 for e in self.entries if e.kind == "final")
        gaps = [e for e in self.entries if e.kind == "gap"]
        text = f"{finals} caption{'s' * (finals != 1)}"
        if gaps:
            total = sum(g.duration_ms for g in gaps) / 1000
            text += f" · {len(gaps)} gap{'s' * (len(gaps) != 1)} ({total:.1f} s without captions)"
        return text

    # -- export -------------------------------------------------------------------------------

    def export_entries(self, live_file: Path | None = None) -> list[Entry]:
        """What an export of the current view contains.

        For the live session the autosaved file is preferred when there is one (it also holds
        gaps and session ids); otherwise the finals collected in memory.
        """
        if self.is_live and live_file is not None:
            try:
                saved = read_transcript(live_file)
            except OSError:
                saved = []
            if sum(e.kind == "final" for e in saved) >= sum(e.kind == "final" for e in self.live):
                # Names given after the file was closed still count for this export.
                return saved + [e for e in self.live if e.kind == "rename"]
        return list(self.entries)

    def export(self, path: Path, fmt: str | None = None, *, live_file: Path | None = None,
               content: str = "both") -> Path:
        """Raises ``ValueError`` (format) or ``OSError`` (disk) with a message for a person.
        ``content``: both (bilingual when translated), original or translation."""
        return _export.export(self.export_entries(live_file), path, fmt, content=content)

    def has_translations(self) -> bool:
        return _export.has_translations(self.entries)

    def suggested_name(self, fmt: str) -> str:
        if self.viewing is not None:
            return f"{self.viewing.stem}.{fmt}"
        return _dt.datetime.fromtimestamp(self._clock()).strftime(f"captions_%Y-%m-%d_%H-%M.{fmt}")


def matches(entry: Entry, words: list[str]) -> bool:
    haystack = f"{entry.text} {entry.translation} {entry.source} {entry.speaker_name}".casefold()
    return all(w in haystack for w in words)
