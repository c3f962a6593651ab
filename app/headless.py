"""``caption-overlay --headless``: captions on stdout, a contract other tools rely on.

Output: one final caption per line; with ``--json`` one JSON object per event and line.
Errors and notices go to stderr in plain words. Exit codes (app/cli.py): 0 ok · 2 usage or
configuration · 3 authentication/billing · 4 connection failed after retries · 5 audio source.
Flags override the saved settings; anything not given comes from them (or the defaults).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from app import APP_ID
from app.cli import EXIT_AUDIO, EXIT_AUTH, EXIT_CONNECTION, EXIT_OK, EXIT_USAGE
from collections import OrderedDict

from app.core.events import (Event, Final, Gap, LLMResponse, Partial, Reconnecting, Recovery,
                             Revision, SessionEnded, SessionStarted, StreamError)
from app.core.session_config import CHUNK_LIMITS_MS, SessionConfig
from app.core.settings import DictStore, Settings
from app.core.speakers import SpeakerNames

log = logging.getLogger(__name__)

# Headless reconnect policy: fail fast when nothing is there at first (a typo in --server),
# ride out outages of up to two minutes once captions were flowing.
INITIAL_RETRIES = 3            # with 0.5 s doubling backoff: gives up within ~4 s
MAX_OUTAGE_S = 120.0


class UsageError(Exception):
    pass


class AuthMissing(Exception):
    pass


def parse_vocabulary(text: str | None) -> tuple[str, ...]:
    """ "Kubernetes, Añejo" → terms. CSV rules: a term with a comma goes in double quotes
    ("Smith, John"); a quote inside an unquoted term is kept as it is (5" screen)."""
    if not text or not text.strip():
        return ()
    try:
        rows = list(csv.reader([text], skipinitialspace=True))
    except csv.Error as exc:
        raise UsageError(f"Could not read the vocabulary list ({exc}).") from None
    return tuple(t.strip() for t in (rows[0] if rows else []) if t.strip())


def _load_settings() -> Settings:
    """The saved preferences when a settings file exists (read-only here), else the defaults."""
    try:
        from app.qt.settings_store import QSettingsStore, default_settings_path
        if default_settings_path().is_file():
            return Settings(QSettingsStore())
    except Exception as exc:  # no Qt, unreadable file: the defaults still work headless
        log.debug("saved settings not used: %s", exc)
    return Settings(DictStore())


@dataclass
class Plan:
    config: SessionConfig        # engine still "assemblyai" until resolve_engine decides
    source_spec: str
    token_url: str | None        # broker URL (broker auth only)
    requested_engine: str | None  # None = auto
    notes: tuple[str, ...] = ()  # saved options left out of this run, and why
    flagged: frozenset = frozenset()   # recognition options given as flags (errors, not notes)


def build_plan(args, settings: Settings) -> Plan:
    """Flags + saved settings → a validated SessionConfig. Raises UsageError (exit 2)."""
    from app.core.streaming import urls

    def pick(flag, key):
        return flag if flag is not None else settings.get(key)

    protocol = pick(args.protocol, "connection/protocol")
    auth_mode = pick(args.auth_mode, "connection/auth_mode")
    token_url = pick(args.token_url, "connection/token_url") or None
    server = pick(args.server, "connection/server_url") or None
    if args.chunk_ms is not None:
        chunk_ms = args.chunk_ms
    else:  # a saved value is clamped to the protocol's limits rather than refused
        lo, hi = CHUNK_LIMITS_MS.get(protocol, (50, 2000))
        chunk_ms = min(max(settings.get("connection/chunk_ms"), lo), hi)
    vocabulary = (parse_vocabulary(args.vocabulary) if args.vocabulary is not None
                  else tuple(settings.get("recognition/vocabulary")))
    requested = args.engine or settings.get("engine/engine")
    requested = requested if requested in ("assemblyai", "local") else None
    from app.core import recognition_options
    config = SessionConfig(
        engine="assemblyai", protocol=protocol,
        region=pick(args.region, "connection/region"), server_url=server, auth_mode=auth_mode,
        token_url=token_url, speech_model=pick(args.speech_model, "connection/speech_model"),
        encoding=pick(args.encoding, "connection/encoding"),
        sample_rate=pick(args.sample_rate, "connection/sample_rate"), chunk_ms=chunk_ms,
        vocabulary=urls.clean_terms(vocabulary),
        silence_ms=pick(args.silence_ms, "recognition/silence_ms"))
    try:
        flags = recognition_options.overrides_from_args(args)
        config, notes = recognition_options.apply(
            config, lambda key: flags[key] if key in flags else settings.get(key), flags.__contains__)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    notes = tuple(notes)
    flagged = frozenset(recognition_options.OPTION_OF_KEY[k] for k in flags)
    try:
        config.validate()
        if requested != "local":
            urls.http_base(config)          # server URL shape; v2 has no EU endpoint
        urls.check_vocabulary(protocol, config.vocabulary)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    source = args.source or settings.get("audio/source")
    if not source:
        raise UsageError("Say which audio to caption with --source (file:PATH, mic, system or both).")
    return Plan(config, source, token_url if auth_mode == "broker" else None, requested,
                notes, flagged)


class Output:
    """Writes events to stdout (plain or JSON) and notices to stderr; serialised across threads."""

    def __init__(self, json_mode: bool, stdout=None, stderr=None, labelled: bool = False,
                 names: SpeakerNames | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.labelled = labelled
        self.names = names or SpeakerNames()
        self._texts: OrderedDict[int, str] = OrderedDict()   # recent finals, for revision notices
        self._lock = threading.Lock()

    def notice(self, text: str) -> None:
        with self._lock:
            print(f"{APP_ID}: {text}", file=self.stderr, flush=True)

    def event(self, label: str, event: Event) -> None:
        speaker = None
        if isinstance(event, Final):
            self.names.note_final(event.id, event.speaker, label)
            speaker = self.names.display(event.speaker, label)
            with self._lock:
                self._texts[event.id] = event.text
                if len(self._texts) > 2000:
                    self._texts.popitem(last=False)
        elif isinstance(event, Revision):
            if self.names.revise(event.id, event.speaker) is None:
                return                       # nothing changes for the reader
            speaker = self.names.display(event.speaker, label)
            if not self.json_mode:
                with self._lock:
                    text = self._texts.get(event.id, "")
                shown = text if len(text) <= 40 else text[:39] + "…"
                self.notice(f"speaker revised: \"{shown}\" was said by {speaker or 'an unknown speaker'}.")
        if self.json_mode:
            record = event_json(event, speaker=speaker)
            if record is not None:
                record["source"] = label
                self._write(json.dumps(record, ensure_ascii=False))
        elif isinstance(event, Final) and event.text.strip():
            text = f"{speaker}: {event.text}" if speaker else event.text
            self._write(f"[{label}] {text}" if self.labelled else text)
        notice = _notice_for(event)
        if notice:
            self.notice(f"[{label}] {notice}" if self.labelled else notice)

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                self.stdout.write(line + "\n")
                self.stdout.flush()
            except BrokenPipeError:  # reader went away (| head): stop quietly
                pass


def event_json(event: Event, speaker: str | None = None) -> dict | None:
    """``speaker``: the display name of a Final's or Revision's speaker (None = no name)."""
    if isinstance(event, Final):
        return {"event": "final", "text": event.text, "audio_start": event.audio_start,
                "audio_end": event.audio_end, "id": event.id, "speaker": speaker,
                "language": event.language}
    if isinstance(event, Revision):
        return {"event": "revision", "id": event.id, "speaker": speaker}
    if isinstance(event, LLMResponse):
        return {"event": "llm_response", "turn_order": event.turn_order,
                "transcript": event.transcript, "text": event.text}
    if isinstance(event, Partial):
        return {"event": "partial", "text": event.text, "audio_start": event.audio_start,
                "audio_end": event.audio_end}
    if isinstance(event, SessionStarted):
        return {"event": "session_started", "session_id": event.session_id,
                "protocol": event.protocol, "expires_at": event.expires_at, "model": event.model}
    if isinstance(event, SessionEnded):
        return {"event": "session_ended", "audio_duration_s": event.audio_duration_s}
    if isinstance(event, StreamError):
        return {"event": "error", "code": event.code, "message": event.message,
                "recovery": event.recovery.value, "retryable": event.retryable}
    if isinstance(event, Reconnecting):
        return {"event": "reconnecting", "attempt": event.attempt, "delay_s": event.delay_s,
                "reason": event.reason}
    if isinstance(event, Gap):
        return {"event": "gap", "start_ms": event.start_ms, "duration_ms": event.duration_ms,
                "reason": event.reason}
    return None


def _notice_for(event: Event) -> str | None:
    if isinstance(event, Reconnecting):
        return f"reconnecting in {event.delay_s:.1f} s (attempt {event.attempt})."
    if isinstance(event, Gap):
        return f"{event.duration_ms / 1000:.1f} s of audio were not captioned ({event.reason})."
    if isinstance(event, StreamError) and event.recovery is not Recovery.STOP:
        return event.message        # STOP errors are reported once, with the exit code
    return None


COMMANDS_HELP = ("commands on stdin: force-end | silence MS | vocabulary TERM, TERM | "
                 "languages CODE, CODE | stop")


def handle_command(line: str, pipelines, out: Output) -> None:
    """One stdin command, applied live to every pipeline (lets scripts drive a running session)."""
    words = line.strip().split(None, 1)
    if not words:
        return
    cmd, rest = words[0].lower().replace("_", "-"), (words[1] if len(words) > 1 else "")
    try:
        if cmd in ("force-end", "f"):
            for p in pipelines:
                p.force_end()
        elif cmd == "silence":
            ms = int(rest)
            if not 0 <= ms <= 20000:
                raise ValueError("the silence threshold must be 0-20000 ms")
            for p in pipelines:
                p.set_silence_threshold(ms)
            out.notice(f"silence threshold set to {ms} ms.")
        elif cmd == "vocabulary":
            terms = parse_vocabulary(rest)
            for p in pipelines:
                p.set_vocabulary(terms)
            out.notice(f"vocabulary set ({len(terms)} terms).")
        elif cmd in ("languages", "language"):
            from app.core.recognition_options import parse_languages
            codes = parse_languages(rest)
            for p in pipelines:
                p.set_languages(codes)
            out.notice(f"languages set to {', '.join(codes)}.")
        elif cmd in ("stop", "quit"):
            for p in pipelines:
                p.stop()
        else:
            out.notice(f"unknown command {cmd!r}; {COMMANDS_HELP}.")
    except (ValueError, UsageError) as exc:
        out.notice(f"{cmd}: {exc}")


def _read_commands(stream, pipelines, out: Output) -> None:
    try:
        for line in stream:
            handle_command(line, pipelines, out)
    except (OSError, ValueError):   # stdin closed or unreadable: commands are optional
        pass


def _exit_code(pipelines) -> tuple[int, str | None]:
    from app.core.streaming import close_codes
    for p in pipelines:
        if p.fatal_source_error is not None:
            return EXIT_AUDIO, str(p.fatal_source_error)
    for p in pipelines:
        error = p.fatal_error
        if error is None:
            continue
        kind = close_codes.category(error)
        if kind in (close_codes.AUTH, close_codes.BILLING, close_codes.LIMIT):
            return EXIT_AUTH, error.message
        if kind == close_codes.CONFIG:
            return EXIT_USAGE, error.message
        return EXIT_CONNECTION, f"{error.message.rstrip('.').removesuffix('; retrying')}. Giving up."
    return EXIT_OK, None


def _setup_logging() -> None:
    level = os.environ.get("CAPTION_OVERLAY_LOG", "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), stream=sys.stderr,
                        format=f"{APP_ID}: %(levelname)s: %(name)s: %(message)s")


def _utf8_stdout() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="replace", line_buffering=True)
        except (AttributeError, ValueError):
            pass


def run_headless(args, *, stdout=None, stderr=None) -> int:
    _utf8_stdout()
    _setup_logging()
    out = Output(bool(args.json), stdout, stderr)
    try:
        plan = build_plan(args, _load_settings())
    except UsageError as exc:
        out.notice(str(exc))
        return EXIT_USAGE

    from app.core.credentials import KeyringUnavailable, load_api_key
    from app.core.session_factory import create_session, resolve_engine
    from app.core.streaming.auth import NO_KEY_MESSAGE
    key_note = ""
    try:
        api_key = load_api_key()
    except KeyringUnavailable as exc:
        api_key, key_note = None, f" ({exc})"
    engine = resolve_engine(plan.requested_engine, bool(api_key), plan.token_url)
    config = replace(plan.config, engine=engine)
    for note in plan.notes:
        out.notice(note)
    if engine == "local":
        problems = config.unsupported_options()
        asked = [why for name, why in problems.items() if name in plan.flagged]
        if asked:
            out.notice(asked[0])
            return EXIT_USAGE
        config, notes = config.without_unsupported()
        for note in notes:
            out.notice(note)
    if engine == "local":
        from app.core.engines import offline_engine_available
        ok, reason = offline_engine_available()
        if not ok:
            out.notice(f"No AssemblyAI key is configured and the offline engine is not available "
                       f"({reason}). Save an API key in Settings or set ASSEMBLYAI_API_KEY.")
            return EXIT_USAGE
    elif config.auth_mode in ("key", "token") and not api_key:
        out.notice(NO_KEY_MESSAGE + key_note)
        return EXIT_AUTH

    try:
        sources = _open_sources(plan.source_spec, config)
    except Exception as exc:  # AudioSourceError, DeviceNotFound, missing audio backend
        out.notice(str(exc) or type(exc).__name__)
        return EXIT_AUDIO
    out.labelled = len(sources) > 1
    labels = {getattr(s, "label", "audio") for s in sources}
    out.names.mic_is_you = config.speaker_labels and len(sources) > 1 and "mic" in labels

    from app.core.pipeline import CaptionPipeline
    writers = []
    pipelines = []
    for source in sources:
        label = getattr(source, "label", "audio")
        listeners = [partial(out.event, label)]
        if args.transcript_dir:
            from app.core.transcript import TranscriptWriter
            try:
                writer = TranscriptWriter(Path(args.transcript_dir), protocol=config.protocol
                                          if engine != "local" else "local", source=label)
            except OSError as exc:
                out.notice(f"Cannot write transcripts to {args.transcript_dir}: {exc}")
                return EXIT_USAGE
            writers.append(writer)
            listeners.append(partial(writer.on_event, source=label))

        def listener(event, _targets=tuple(listeners)):
            for target in _targets:
                target(event)

        factory = partial(create_session, config, api_key=api_key, token_url=plan.token_url)
        pipelines.append(CaptionPipeline(
            source, lambda lst, f=factory: f(lst), listener, label=label,
            max_retries=INITIAL_RETRIES, max_outage_s=MAX_OUTAGE_S))

    stopping = threading.Event()

    def on_signal(signum, frame):
        if stopping.is_set():           # second Ctrl+C: leave now
            os._exit(130)
        stopping.set()
        for p in pipelines:
            p.stop()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread (tests calling run_headless in a thread)
            pass
    threads = [threading.Thread(target=p.run, name=f"pipeline-{p.label}", daemon=True)
               for p in pipelines]
    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=_read_commands, args=(sys.stdin, pipelines, out), daemon=True,
                         name="stdin-commands").start()
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
            if any(p.fatal_error for p in pipelines):  # one source failed for good: end all
                for p in pipelines:
                    p.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for writer in writers:
            writer.close()
    code, message = _exit_code(pipelines)
    if message:
        out.notice(message)
    return code


def _open_sources(spec: str, config: SessionConfig):
    if spec.startswith("file:"):
        from app.core.audio.errors import AudioSourceError
        from app.core.audio.source import WavFileSource
        path = Path(spec[5:]).expanduser()
        if not path.is_file():
            raise AudioSourceError(f"Audio file not found: {path}")
        return [WavFileSource(path, config.sample_rate, config.chunk_ms)]
    from app.core.audio.devices import open_sources
    return open_sources(spec, config.sample_rate, config.chunk_ms)
