"""``caption-overlay --headless``: captions on stdout, a contract other tools rely on.

Output: one final caption per line; with ``--json`` one JSON object per event and line.
Errors and notices go to stderr in plain words. Exit codes (app/cli.py): 0 ok · 2 usage or
configuration · 3 authentication/billing · 4 connection failed after retries · 5 audio source.
Flags override the saved settings; anything not given comes from them (or the defaults), exactly
as the overlay would use them: both fronts run the same ``CaptionService``. The settings file is
only read, never written, and no display is needed.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
from collections import OrderedDict
from functools import partial

from app import APP_ID
from app.cli import EXIT_AUDIO, EXIT_AUTH, EXIT_CONNECTION, EXIT_OK, EXIT_USAGE
from app.core import silence, vocabulary
from app.core.event_json import event_json
from app.core.events import (Event, Final, Gap, Reconnecting, Recovery, Revision, StreamError,
                             Translation)
from app.core.run_plan import PlanError, overrides_from_args
from app.core.service import CaptionService, RunOutcome, ServiceListener
from app.core.settings import DictStore, Settings
from app.core.speakers import SpeakerNames
from app.core.text import strip_controls

log = logging.getLogger(__name__)

# Headless reconnect policy: fail fast when nothing is there at first (a typo in --server),
# ride out outages of up to two minutes once captions were flowing.
INITIAL_RETRIES = 3            # with 0.5 s doubling backoff: gives up within ~4 s
MAX_OUTAGE_S = 120.0
QUIT_WAIT_S = 8.0              # after the run ended: the transcript's last write and fsync
# The longest the loop sleeps without work: a signal (Ctrl+C) is handled at the latest then, on
# platforms where a wait on a lock cannot be interrupted (Windows).
MAX_WAIT_S = 1.0


def _load_settings() -> Settings:
    """The saved preferences, read-only, when a settings file exists; else the defaults."""
    try:
        from app.qt.settings_store import QSettingsStore, default_settings_path
        if default_settings_path().is_file():
            return Settings(QSettingsStore(read_only=True))
    except Exception as exc:  # no QtCore, unreadable file: the defaults still work headless
        log.debug("saved settings not used: %s", exc)
    return Settings(DictStore())


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

    def event(self, label: str, event: Event, latency_ms: float | None = None) -> None:
        """``names`` already knows this final (or has applied this revision): the service
        records every final and drops revisions that change nothing before they get here."""
        speaker = None
        if isinstance(event, Final):
            speaker = self.names.display(event.speaker, label)
            with self._lock:
                self._texts[event.id] = event.text
                if len(self._texts) > 2000:
                    self._texts.popitem(last=False)
        elif isinstance(event, Revision):
            speaker = self.names.display(event.speaker, label)
            if not self.json_mode:
                with self._lock:
                    text = self._texts.get(event.id, "")
                shown = strip_controls(text if len(text) <= 40 else text[:39] + "…")
                self.notice(f"speaker revised: \"{shown}\" was said by {speaker or 'an unknown speaker'}.")
        if self.json_mode:
            record = event_json(event, latency_ms, speaker=speaker)
            if record is not None:
                record["source"] = label
                self._write(json.dumps(record, ensure_ascii=False))
        elif isinstance(event, Final) and event.text.strip():
            text = f"{speaker}: {event.text}" if speaker else event.text
            self._write(strip_controls(f"[{label}] {text}" if self.labelled else text))
        elif isinstance(event, Translation) and event.text.strip():
            # Printed when it arrives, indented under the finals: a final never waits for it.
            self._write("    " + strip_controls(event.text))
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


def _notice_for(event: Event) -> str | None:
    if isinstance(event, Reconnecting):
        return f"reconnecting in {event.delay_s:.1f} s (attempt {event.attempt})."
    if isinstance(event, Gap):
        return f"{event.duration_ms / 1000:.1f} s of audio were not captioned ({event.reason})."
    if isinstance(event, StreamError) and event.recovery is not Recovery.STOP:
        return event.message        # STOP errors are reported once, with the exit code
    return None


class _Printer(ServiceListener):
    """The service's reports, printed."""

    def __init__(self, out: Output, share=None) -> None:
        self.out = out
        self.share = share          # the caption page / caption targets (--serve, --zoom-url…)
        self.outcome: RunOutcome | None = None

    def caption_event(self, label, event, latency_ms):
        self.out.event(label, event, latency_ms)
        if self.share is not None:      # queues; never blocks
            speaker = self.out.names.display(getattr(event, "speaker", None), label) \
                if isinstance(event, (Final, Revision)) else None
            self.share.on_event(label, event, latency_ms, speaker)

    def problem(self, message, from_captions=False):
        if not from_captions:       # errors of the captions are reported with the exit code
            self.out.notice(message)

    def notice(self, message):
        self.out.notice(message)

    def run_started(self, labels):
        self.out.labelled = len(labels) > 1

    def run_ended(self, outcome):
        self.outcome = outcome


COMMANDS_HELP = ("commands on stdin: force-end | silence MS | vocabulary TERM, TERM | "
                 "languages CODE, CODE | stop")


def handle_command(line: str, service, out: Output) -> None:
    """One stdin command, applied live to the running captions (lets scripts drive a session)."""
    words = line.strip().split(None, 1)
    if not words:
        return
    cmd, rest = words[0].lower().replace("_", "-"), (words[1] if len(words) > 1 else "")
    try:
        if cmd in ("force-end", "f"):
            service.force_end()
        elif cmd == "silence":
            try:
                ms = silence.validate(int(rest))
            except ValueError:
                raise ValueError(f"the silence threshold must be {silence.RANGE_TEXT}") from None
            service.set_silence_threshold(ms)
            out.notice(f"silence threshold set to {ms} ms.")
        elif cmd == "vocabulary":
            terms = tuple(vocabulary.parse_text(rest))
            service.set_vocabulary(terms)
            out.notice(f"vocabulary set ({len(terms)} terms).")
        elif cmd in ("languages", "language"):
            from app.core.recognition_options import parse_languages
            codes = parse_languages(rest)
            service.set_languages(codes)
            out.notice(f"languages set to {', '.join(codes)}.")
        elif cmd in ("stop", "quit"):
            service.stop()
        else:
            out.notice(f"unknown command {cmd!r}; {COMMANDS_HELP}.")
    except ValueError as exc:
        out.notice(f"{cmd}: {exc}")


def _read_commands(stream, post, service, out: Output) -> None:
    try:
        for line in stream:
            post(partial(handle_command, line, service, out))
    except (OSError, ValueError):   # stdin closed or unreadable: commands are optional
        pass


def exit_code(outcome: RunOutcome | None) -> tuple[int, str | None]:
    """The exit code for how the run ended, and the message that goes with it."""
    from app.core.streaming import close_codes
    if outcome is None:
        return EXIT_OK, None
    if outcome.source_error is not None:
        return EXIT_AUDIO, str(outcome.source_error)
    error = outcome.error
    if error is None:
        return EXIT_OK, None
    kind = close_codes.category(error)
    if kind in (close_codes.AUTH, close_codes.BILLING, close_codes.LIMIT):
        return EXIT_AUTH, error.message
    if kind == close_codes.CONFIG:
        return EXIT_USAGE, error.message
    return EXIT_CONNECTION, f"{error.message.rstrip('.').removesuffix('; retrying')}. Giving up."


def start_error_code(exc: Exception | None) -> int:
    """The exit code for a run that could not start."""
    if isinstance(exc, PlanError):
        return EXIT_AUTH if exc.auth else EXIT_USAGE
    return EXIT_AUDIO           # the audio source could not be opened (or has no backend)


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


def run_headless(args, *, stdout=None, stderr=None, settings: Settings | None = None) -> int:
    _utf8_stdout()
    _setup_logging()
    out = Output(bool(args.json), stdout, stderr)
    overrides = overrides_from_args(args)
    settings = settings if settings is not None else _load_settings()
    try:
        share = _start_share(args, settings, out)
    except PlanError as exc:
        out.notice(str(exc))
        return EXIT_USAGE
    printer = _Printer(out, share)
    posted: queue.SimpleQueue = queue.SimpleQueue()
    service = CaptionService(
        settings, overrides, listener=printer,
        post=posted.put, transcript_dir=args.transcript_dir,
        save_transcripts=bool(args.transcript_dir),
        pipeline_options={"max_retries": INITIAL_RETRIES, "max_outage_s": MAX_OUTAGE_S})
    out.names = service.names       # the run's speaker names: "Speaker A", renames, "You"
    if not service.start():
        _stop_share(share, out)
        return start_error_code(service.start_error)

    interrupted = threading.Event()

    def on_signal(signum, frame):
        if interrupted.is_set():        # second Ctrl+C: leave now
            os._exit(130)
        interrupted.set()
        posted.put(service.stop)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread (tests calling run_headless in a thread)
            pass
    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=_read_commands, args=(sys.stdin, posted.put, service, out),
                         daemon=True, name="stdin-commands").start()
    try:
        while printer.outcome is None:
            # Asleep until there is work or the service has something due (a notice that fades,
            # a translation that is late): no ticking while nothing waits for time.
            due = service.next_tick_s()
            wait = MAX_WAIT_S if due is None else min(due, MAX_WAIT_S)
            try:
                posted.get(timeout=wait)()
            except queue.Empty:
                pass
            due = service.next_tick_s()
            if due is not None and due <= 0:
                service.tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.shutdown(QUIT_WAIT_S)
        while not posted.empty():       # a transcript problem reported while closing
            posted.get()()
        _stop_share(share, out)
    code, message = exit_code(printer.outcome)
    if message:
        out.notice(message)
    return code


def _start_share(args, settings: Settings, out: Output):
    """The caption page / caption targets the flags ask for (None when none). ``PlanError``."""
    flags = (getattr(args, "serve", None), getattr(args, "zoom_url", None),
             getattr(args, "youtube_url", None), getattr(args, "webhook_url", None))
    if not any(flags):
        return None
    from app.core.sharing import CaptionShare, ShareConfigError, ShareStartError
    from app.core.sharing.config import share_config_from
    try:
        config = share_config_from(settings.snapshot(), serve=flags[0], zoom_url=flags[1],
                                   youtube_url=flags[2], webhook_url=flags[3],
                                   caption_lang=getattr(args, "caption_lang", None))
        share = CaptionShare(config, on_status=lambda name, text: out.notice(text)).start()
    except (ShareConfigError, ShareStartError) as exc:
        raise PlanError(str(exc)) from None
    if share.url:
        out.notice(f"sharing captions at {share.url}")
        isatty = getattr(out.stderr, "isatty", None)
        if "token=" in share.url and isatty is not None and isatty():  # phones scan it
            from app.core.sharing.qr import qr_text
            out.notice("scan to open the captions on a phone:\n" + qr_text(share.url))
    return share


def _stop_share(share, out: Output) -> None:
    if share is not None:
        for note in share.stop():
            out.notice(note)
