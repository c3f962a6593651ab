"""Durable session transcripts: one append-only JSONL file per session, and the reader for them.

Why JSONL: every record is one self-contained line, so a process killed mid-write leaves at
most one torn *last* line, which the reader skips; everything before it stays readable.

Durability policy (decided here, documented in the README):
- every record is written and flushed to the operating system *immediately* on the caller's
  thread, so a crash or SIGKILL of the app loses nothing that was already handed to us;
- ``os.fsync`` (protection against an OS crash or power loss) runs on a small background thread
  right after each write, coalescing bursts — typically within milliseconds, always < 1 s — so
  a slow disk never blocks the caption pipeline. ``close()`` does a final fsync.

Records (each a JSON object on one line, ``"type"`` says which):
- ``header``    first line: format, app, app_version, protocol, source, started (POSIX s), started_at (ISO)
- ``session``   a recognition session began: session_id, protocol, expires_at, model (one per
                reconnect or rollover)
- ``final``     text, audio_start, audio_end (ms of continuous stream time), source, wall; with
                speaker labels also id (run-unique) and speaker; with detection, language
- ``revision``  id, speaker: a later speaker label for that final. Appended, never a rewrite:
                readers apply it (``resolve_speakers``)
- ``rename``    label, name: the user named a speaker ("A is Dana") for this session
- ``translation`` id, language, text: the live translation of that final (appended whenever it
                arrives, possibly after later finals; ``attach_translations`` pairs them)
- ``gap``       start_ms, duration_ms, reason, source, wall — audio no recognizer received
- ``reconnect`` attempt, delay_s, reason, source, wall
- ``error``     code, message, recovery (errors that end or interrupt a session)
- ``end``       written by ``close()``: wall
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from dataclasses import replace as _replace
from typing import Any, Iterable, Mapping

from app import APP_ID, __version__
from app.core.events import (Event, Final, Gap, Reconnecting, Revision, SessionStarted, StreamError,
                             Translation)
from app.core.private_files import private_dir
from app.core.speakers import SpeakerNames, label_key

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".jsonl"
KINDS = ("header", "session", "final", "gap", "reconnect", "error", "end", "revision", "rename",
         "restart", "translation")


def default_transcript_dir() -> Path:
    """``<platform user data dir>/transcripts`` (e.g. ~/.local/share/caption-overlay/transcripts)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_ID, appauthor=False)) / "transcripts"


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Entry:
    """One record of a transcript file, typed enough for display and export."""

    kind: str                      # one of KINDS
    wall: float = 0.0              # POSIX seconds when it was recorded
    source: str = ""               # source label ("mic", "system", "file", …)
    text: str = ""                 # finals: the caption text
    audio_start: int = 0           # finals: ms of continuous stream time
    audio_end: int = 0
    start_ms: int = 0              # gaps
    duration_ms: int = 0
    reason: str = ""               # gaps, reconnects
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the raw record
    final_id: int | None = None    # finals and revisions: the run-unique id
    speaker: str | None = None     # finals: the engine's label ("A", "UNKNOWN"); revisions: new label
    language: str | None = None    # finals: detected language code
    speaker_name: str = ""         # finals, after resolve_speakers: the display name ("" = none)
    translation: str = ""          # finals, after attach_translations: the translated text
    translation_language: str = ""

    @property
    def is_final(self) -> bool:
        return self.kind == "final"


@dataclass(frozen=True)
class SessionInfo:
    """What the history window lists for a past session file."""

    path: Path
    started: float                 # POSIX seconds
    protocol: str
    source: str
    finals: int
    gaps: int
    preview: str                   # the first final's text (shortened)
    last_wall: float               # when the last record was written
    model: str = ""                # the speech model the server reported (last session record)


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if value != value or value in (float("inf"), float("-inf")):  # NaN/inf never reach export
        return default
    return float(value)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(value: Any) -> str | None:
    text = _str(value).strip()
    return text[:64] or None


def _entry_from_record(record: Mapping[str, Any]) -> Entry | None:
    kind = record.get("type")
    if kind not in KINDS:
        return None
    wall = _num(record.get("wall", record.get("started")))
    common = dict(kind=kind, wall=wall, source=_str(record.get("source")), data=dict(record))
    if kind == "final":
        return Entry(text=_str(record.get("text")), audio_start=int(_num(record.get("audio_start"))),
                     audio_end=int(_num(record.get("audio_end"))), final_id=_id(record.get("id")),
                     speaker=_short(record.get("speaker")), language=_short(record.get("language")),
                     **common)
    if kind == "revision":
        return Entry(final_id=_id(record.get("id")), speaker=_short(record.get("speaker")), **common)
    if kind == "translation":
        return Entry(final_id=_id(record.get("id")), language=_short(record.get("language")),
                     text=_str(record.get("text")), **common)
    if kind == "rename":
        return Entry(speaker=_short(record.get("label")), text=_str(record.get("name"))[:80], **common)
    if kind == "gap":
        return Entry(start_ms=int(_num(record.get("start_ms"))),
                     duration_ms=int(_num(record.get("duration_ms"))),
                     reason=_str(record.get("reason")), **common)
    if kind in ("reconnect", "error"):
        reason = _str(record.get("reason")) or _str(record.get("message"))
        return Entry(reason=reason, **common)
    return Entry(**common)


def read_transcript(path: Path | str) -> list[Entry]:
    """All records of a transcript file, in file order.

    Lines that are not valid records (a torn last line after a kill, a stray edit) are skipped
    with a logged warning — never an exception — so a damaged file still shows what it holds.
    Raises ``OSError`` only when the file cannot be read at all.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    entries: list[Entry] = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            torn = number == len(lines)  # no newline after it: the write was cut short
            log.warning("%s line %d: %s; skipped", path.name, number,
                        "incomplete last line (the app was stopped mid-write)" if torn else "not valid JSON")
            continue
        entry = _entry_from_record(record) if isinstance(record, dict) else None
        if entry is None:
            log.warning("%s line %d: unknown record; skipped", path.name, number)
            continue
        entries.append(entry)
    return entries


def finals(entries: Iterable[Entry]) -> list[Entry]:
    return [e for e in entries if e.kind == "final"]


def resolve_speakers(entries: Iterable[Entry], names: SpeakerNames | None = None) -> list[Entry]:
    """Entries with every revision applied to its final (by id; the last one wins) and each
    final's ``speaker_name`` set, using the renames recorded in the file (or ``names``).
    Revision and rename records stay in the list; they are not captions."""
    entries = list(entries)
    latest: dict[int, str | None] = {}
    renames: dict[str, str] = {}
    for e in entries:
        if e.kind == "revision" and e.final_id is not None:
            latest[e.final_id] = e.speaker
        elif e.kind == "rename" and e.speaker and e.text:
            renames[label_key(e.speaker) or e.speaker] = e.text
    if names is None:
        # Both sources with speaker labels: the microphone is the user, as it was on screen.
        sources = {e.source for e in entries if e.kind == "final"}
        labelled = any(e.kind == "final" and e.speaker for e in entries)
        names = SpeakerNames(mic_is_you=labelled and "mic" in sources and len(sources) > 1)
        for label, name in renames.items():
            try:
                names.rename(label, name)
            except ValueError:
                continue          # a hand-edited file: ignore a name we would not accept
    out = []
    for e in entries:
        if e.kind == "final":
            speaker = latest.get(e.final_id, e.speaker) if e.final_id is not None else e.speaker
            e = _replace(e, speaker=speaker, speaker_name=names.display(speaker, e.source) or "")
        out.append(e)
    return out


def attach_translations(entries: Iterable[Entry]) -> list[Entry]:
    """Entries with each final carrying its translation (by id; the last one wins).
    Translation records stay in the list; they are not captions."""
    entries = list(entries)
    found = {e.final_id: e for e in entries
             if e.kind == "translation" and e.final_id is not None and e.text.strip()}
    if not found:
        return entries
    out = []
    for e in entries:
        if e.kind == "final" and e.final_id in found:
            t = found[e.final_id]
            e = _replace(e, translation=t.text.strip(), translation_language=t.language or "")
        out.append(e)
    return out


# Summaries by (path, mtime, size): reopening the history lists old sessions without re-reading them.
_INFO_CACHE: dict[tuple[str, int, int], SessionInfo | None] = {}
_INFO_CACHE_MAX = 2000


def session_info(path: Path) -> SessionInfo | None:
    """Summary of one transcript file, or None when it cannot be read or is not a transcript."""
    try:
        st = path.stat()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    info = _summarise(path)
    if len(_INFO_CACHE) >= _INFO_CACHE_MAX:
        _INFO_CACHE.clear()
    _INFO_CACHE[key] = info
    return info


def _summarise(path: Path) -> SessionInfo | None:
    try:
        entries = read_transcript(path)
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    header = next((e for e in entries if e.kind == "header"), None)
    if header is None:
        return None
    first = next((e for e in entries if e.kind == "final"), None)
    preview = first.text if first else ""
    if len(preview) > 80:
        preview = preview[:79].rstrip() + "…"
    return SessionInfo(
        path=path, started=header.wall, protocol=_str(header.data.get("protocol")),
        source=header.source, finals=sum(1 for e in entries if e.kind == "final"),
        gaps=sum(1 for e in entries if e.kind == "gap"), preview=preview,
        last_wall=max((e.wall for e in entries), default=header.wall),
        model=next((_str(e.data.get("model")) for e in reversed(entries)
                    if e.kind == "session" and _str(e.data.get("model"))), "")[:64],
    )


def transcript_files(directory: Path | str) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file()), reverse=True)


def list_sessions(directory: Path | str) -> list[SessionInfo]:
    """Past sessions in ``directory``, newest first. Unreadable or foreign files are left out."""
    infos = [info for p in transcript_files(directory) if (info := session_info(p)) is not None]
    infos.sort(key=lambda i: (i.started, i.path.name), reverse=True)
    return infos


def prune(directory: Path | str, retention_days: int, *, now: float | None = None,
          keep: Iterable[Path] = ()) -> int:
    """Delete transcript files last written more than ``retention_days`` ago; returns how many.

    ``retention_days <= 0`` keeps everything. Only ``*.jsonl`` files are touched; files in
    ``keep`` (the session being written) are never deleted.
    """
    if retention_days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    protected = {Path(p).resolve() for p in keep}
    removed = 0
    for path in transcript_files(directory):
        try:
            if path.resolve() in protected or path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
            removed += 1
        except OSError as exc:
            log.warning("could not delete old transcript %s: %s", path, exc)
    return removed


# --------------------------------------------------------------------------------------------
# Writing


def _new_path(directory: Path, started: float) -> Path:
    stamp = _dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d_%H-%M-%S")
    return directory / f"{stamp}_{secrets.token_hex(3)}{SUFFIX}"


class TranscriptWriter:
    """Appends a session's finals, gaps and reconnects to a new JSONL file. Thread-safe.

    ``on_event`` never raises: a disk error is logged, kept in ``error``, and the unwritten
    records are retried with the next event and on ``close()`` — so a full disk that recovers
    loses nothing.
    """

    def __init__(self, directory: Path | str, *, protocol: str, source: str = "",
                 clock=time.time, final_ids: bool = False) -> None:
        self.directory = Path(directory)
        self.final_ids = final_ids      # every final names its id (a translation will refer to it)
        self.protocol = protocol
        self.source = source
        self._clock = clock
        self.error: str | None = None
        self.finals_written = 0
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._closed = False
        self._closing = False
        private_dir(self.directory, tighten=self.directory == default_transcript_dir())
        started = clock()
        for _ in range(5):
            self.path = _new_path(self.directory, started)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                             0o600)  # transcripts are private
                break
            except FileExistsError:
                continue
        else:
            raise OSError(f"could not create a new transcript file in {self.directory}")
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="transcript-fsync", daemon=True)
        self._syncer.start()
        self._append({
            "type": "header", "format": FORMAT_VERSION, "app": APP_ID, "app_version": __version__,
            "protocol": protocol, "source": source, "started": started,
            "started_at": _dt.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        })

    # -- events ------------------------------------------------------------------------------

    def on_event(self, event: Event, source: str | None = None) -> None:
        try:
            self._record(event, source)
        except (TypeError, ValueError) as exc:   # a malformed event must not break the caller
            log.error("transcript: could not record %r: %s", event, exc)

    def _record(self, event: Event, source: str | None) -> None:
        label = self.source if source is None else source
        record: dict[str, Any] | None = None
        if isinstance(event, Final):
            if not event.text.strip():
                return  # an empty end-of-turn carries no caption
            record = {"type": "final", "text": event.text, "audio_start": int(event.audio_start),
                      "audio_end": int(event.audio_end)}
            if self.final_ids or event.speaker is not None or event.language is not None:
                record["id"] = int(event.id)      # what a revision or translation names
            if event.speaker is not None:
                record["speaker"] = event.speaker
            if event.language is not None:
                record["language"] = event.language
        elif isinstance(event, Revision):
            record = {"type": "revision", "id": int(event.id), "speaker": event.speaker}
        elif isinstance(event, Translation):
            record = {"type": "translation", "id": int(event.id), "language": event.language,
                      "text": event.text}
        elif isinstance(event, Gap):
            record = {"type": "gap", "start_ms": int(event.start_ms),
                      "duration_ms": int(event.duration_ms), "reason": event.reason}
        elif isinstance(event, Reconnecting):
            record = {"type": "reconnect", "attempt": event.attempt, "delay_s": round(event.delay_s, 3),
                      "reason": event.reason}
        elif isinstance(event, SessionStarted):
            record = {"type": "session", "session_id": event.session_id, "protocol": event.protocol,
                      "expires_at": event.expires_at}
            if event.model:
                record["model"] = event.model
        elif isinstance(event, StreamError):
            record = {"type": "error", "code": event.code, "message": event.message,
                      "recovery": event.recovery.value}
        if record is None:
            return  # partials and session ends are not worth a disk write
        record["source"] = label
        record["wall"] = round(self._clock(), 3)
        self._append(record)

    # The pipeline's listener signature: ``pipeline = CaptionPipeline(..., listener=writer)``.
    __call__ = on_event

    def restart(self, protocol: str, source: str) -> None:
        """Captions restarted with new settings within the same sitting: one file per sitting,
        a record per restart (what the run uses from here on)."""
        self._append({"type": "restart", "protocol": protocol, "source": source,
                      "wall": round(self._clock(), 3)})

    def rename(self, label: str, name: str, source: str | None = None) -> None:
        """Record that a speaker was named ("A is Dana"); exports of this file use the name."""
        self._append({"type": "rename", "label": str(label), "name": str(name),
                      "source": self.source if source is None else source,
                      "wall": round(self._clock(), 3)})

    def close(self) -> None:
        """Write the end record, fsync, close. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._append({"type": "end", "wall": round(self._clock(), 3), "source": self.source})
        with self._lock:
            self._closed = True
            self._stop.set()
            self._dirty.set()
        self._syncer.join(timeout=5)
        with self._lock:
            try:
                os.fsync(self._file.fileno())
            except OSError as exc:
                self._fail(exc)
            self._file.close()

    def __enter__(self) -> "TranscriptWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _append(self, record: dict[str, Any]) -> None:
        try:
            line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a server's "\ud800": escape, keep exact
            line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            if self._closed:
                log.warning("transcript already closed; %s record dropped", record.get("type"))
                return
            self._pending.append(line)
            if record.get("type") == "final":
                self.finals_written += 1     # counted once accepted (written now or retried later)
            try:
                while self._pending:
                    # One write call per whole line: a kill tears at most the last line.
                    data = self._pending[0]
                    written = self._file.write(data)
                    if written is None or written < len(data):
                        # Partial write (disk full mid-line): terminate the fragment so the
                        # retry starts on a fresh line; the reader skips the fragment.
                        if written:
                            self._pending[0] = b"\n" + data
                        raise OSError("short write (is the disk full?)")
                    self._pending.pop(0)
                self.error = None
            except OSError as exc:
                self._fail(exc)
                return
        self._dirty.set()

    def _fail(self, exc: OSError) -> None:
        message = f"Could not save the transcript to {self.path}: {exc}"
        if message != self.error:
            log.error(message)
        self.error = message

    def _sync_loop(self) -> None:
        while True:
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            try:
                os.fsync(self._file.fileno())
            except (OSError, ValueError) as exc:  # ValueError: closed under us at shutdown
                log.warning("fsync of %s failed: %s", self.path, exc)
