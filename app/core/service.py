"""``CaptionService``: one captioning run from start to end, the same for the overlay and the CLI.

It owns every decision about a run: the plan (``app.core.run_plan``), loading the key, opening
the audio sources, the pipelines (``PipelineGroup``), the transcript, the status line and the
latency, and which setting changes restart the run and which apply live. The fronts only relay:
the Qt ``Controller`` turns the listener calls into signals, the headless CLI prints them.

Threads. Capture and recognition run on the group's threads; whatever they report is handed to
``post`` and handled on the *owner* thread (the GUI thread, or the CLI's main loop), so the
service's state is only ever touched there, in order. Nothing here makes the owner thread wait
on the network or a thread join: ``stop`` asks, and the run ends with ``run_ended`` once the
pipelines have flushed their last finals. Only ``shutdown`` (quitting) waits, bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from app.core import run_plan, translation
from app.core.audio.errors import AudioSourceError
from app.core.credentials import Secret, load_api_key
from app.core.events import Event, Final, LLMResponse, Recovery, Revision, StreamError, Translation
from app.core.history import LiveRecord
from app.core.run_plan import PlanError, RunPlan, RunValues
from app.core.settings import RESTART_KEYS, Settings
from app.core.speakers import SpeakerNames
from app.core.status import Status, StatusModel

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 8.0      # quitting: pipeline stop is bounded (session stop + connector join)
TRANSLATION_WAIT_S = 12.0  # a final with no translation after this: the status says so


@dataclass(frozen=True)
class RunOutcome:
    """Why a run ended. ``error`` is None when it ended normally (stopped, end of a file)."""

    error: StreamError | None
    source_error: AudioSourceError | None = None
    stopped: bool = False           # the user (or the program) asked for it


class ServiceListener:
    """What a front is told. Every call comes on the owner thread, in order."""

    wants_levels = False    # a front that shows a level meter sets this: ``levels_changed`` comes

    def caption_event(self, label: str, event: Event, latency_ms: float | None) -> None:
        """Every event of every source, after the transcript has seen it. ``latency_ms`` is
        speech end → final received, for finals (``None`` otherwise or when unknown)."""

    def status_changed(self, status: Status) -> None:
        """The status line changed."""

    def levels_changed(self, levels: dict) -> None:
        """A level bar moved by a step or a silence hint changed ({label: Level}); at most a few
        times a second, and not at all while every meter shows what it showed."""

    def notice(self, message: str) -> None:
        """Worth saying, nothing to fix (a saved option this model lacks is left out)."""

    def speaker_renamed(self, label: str, name: str) -> None:
        """A speaker was named for this session ("A is Dana")."""

    def problem(self, message: str, from_captions: bool = False) -> None:
        """Something the user must know: a run that cannot start, transcripts not saved, or
        (``from_captions``) an error event that stops captions."""

    def run_started(self, labels: list[str]) -> None:
        """The sources are open and the pipelines started."""

    def run_ended(self, outcome: RunOutcome) -> None:
        """The run is over: every final was delivered and the transcript is closed."""


def run_inline(fn: Callable[[], None]) -> None:
    fn()


class _Run:
    def __init__(self, plan: RunPlan, group, writer) -> None:
        self.plan = plan
        self.group = group
        self.writer = writer
        self.stopping = False
        self.ended = False
        self.untranslated: dict[int, float] = {}     # Final.id → when it arrived (translating)
        self.translation_failing = False
        self.levels_posted = threading.Event()       # a levels report is on its way to the owner


class CaptionService:
    def __init__(self, settings: Settings, overrides: Mapping[str, Any] | None = None, *,
                 listener: ServiceListener | None = None,
                 post: Callable[[Callable[[], None]], None] = run_inline,
                 transcript_dir: Path | str | None = None, save_transcripts: bool | None = None,
                 key_loader: Callable[[], Secret | None] = load_api_key,
                 open_sources: Callable | None = None, create_session: Callable | None = None,
                 group_factory: Callable[..., Any] | None = None,
                 offline_available: Callable[[], tuple[bool, str]] | None = None,
                 pipeline_options: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self.values = RunValues(settings, overrides)
        self.listener = listener or ServiceListener()
        self._post = post
        self._transcript_dir = Path(transcript_dir) if transcript_dir else None
        self._save_transcripts = save_transcripts       # None: the transcript/enabled setting
        self._key_loader = key_loader
        self._open_sources = open_sources
        self._create_session = create_session
        self._group_factory = group_factory
        self._offline_available = offline_available
        self._pipeline_options = dict(pipeline_options or {})
        self._session_key: Secret | None = None
        self._run: _Run | None = None
        self._restart_pending = False
        self._closers: list[threading.Thread] = []
        self.plan: RunPlan | None = None                 # of the current (or last) run
        self.last_outcome: RunOutcome | None = None
        self.start_error: Exception | None = None        # why the last start() failed
        self.status_model = StatusModel(silence_ms=self.values.get("recognition/silence_ms"),
                                        clock=clock)
        # Display names of this run's speakers: every front shows these (renames included).
        self.names = SpeakerNames()
        # The sitting's finals and gaps from its first caption: History opened at any time
        # shows all of it. A restart within the sitting keeps it; a new start begins anew.
        self.live_record = LiveRecord(names=self.names)
        self._keep_record = False
        self._sitting_writer = None     # the transcript a restart within the sitting goes on in

    # ---- what the fronts read ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A run exists (it may be stopping: ``run_ended`` has not been sent yet)."""
        return self._run is not None

    @property
    def stopping(self) -> bool:
        return self._run is not None and self._run.stopping

    @property
    def status(self) -> Status:
        return self.status_model.status

    @property
    def labels(self) -> list[str]:
        return list(self._run.group.labels) if self._run is not None else []

    @property
    def transcript_path(self) -> Path | None:
        writer = self._run.writer if self._run is not None else None
        return getattr(writer, "path", None)

    @property
    def transcript_dir(self) -> Path:
        if self._transcript_dir is None:
            from app.core.transcript import default_transcript_dir
            self._transcript_dir = default_transcript_dir()
        return self._transcript_dir

    def key_refused(self) -> bool:
        """The last run ended because AssemblyAI refused the API key it used (the key page
        says so next to the stored key); False while a run goes on."""
        outcome, plan = self.last_outcome, self.plan
        if self._run is not None or outcome is None or outcome.error is None \
                or plan is None or plan.api_key is None:
            return False
        from app.core.streaming.close_codes import AUTH, category
        return category(outcome.error) == AUTH

    def levels(self) -> dict:
        return self._run.group.levels() if self._run is not None else {}

    def tick(self) -> None:
        """Called by the front when ``next_tick_s`` says: notices whose time is up fade out, an
        overdue translation is reported."""
        run = self._run
        if run is not None:
            if run.untranslated:
                self._check_translations(run)
            self._publish(self.status_model.tick())

    def next_tick_s(self) -> float | None:
        """Seconds until ``tick`` has something to do; None while nothing waits for time (the
        front need not wake at all)."""
        run = self._run
        if run is None:
            return None
        due = self.status_model.next_change_in()
        if run.untranslated:
            late = min(run.untranslated.values()) + TRANSLATION_WAIT_S - self._clock()
            due = late if due is None else min(due, late)
        return None if due is None else max(0.0, due)

    # ---- lifecycle (owner thread) ------------------------------------------------------------
    def start(self) -> bool:
        """Plan, open and start a run. False (with ``problem`` and an error status) if it cannot."""
        if self._run is not None:
            if self._run.stopping:
                self._restart_pending = True      # start again as soon as the old run ended
            return True
        # No status until the plan says what starts: "Connecting…" here would be wrong for the
        # offline engine (its model loads first) and is replaced before anyone could read it.
        try:
            key, note = run_plan.load_key(self.values, self._key_loader, self._session_key)
            plan = run_plan.plan_run(self.values, key, key_note=note,
                                     offline_available=self._offline_available)
            opener = self._sources_opener()
            sources = [source for spec in plan.source_specs
                       for source in opener(spec, plan.config.sample_rate, plan.config.chunk_ms)]
        except Exception as exc:  # noqa: BLE001 - every failure here is shown, none crashes the app
            self.plan = None
            self.start_error = exc
            self._end_sitting_transcript()
            self._fail(_plain(exc))
            return False
        self.start_error = None
        self.plan = plan
        self._warn_if_insecure(plan)
        for note in plan.notes:
            log.info("%s", note)
            self.listener.notice(note)
        holder: list[_Run] = []
        group = (self._group_factory or _pipeline_group())(
            sources, partial(self._session_for, plan),
            lambda label, event: self._post(partial(self._on_event, holder[0], label, event)),
            lambda: self._post(partial(self._on_group_done, holder[0])),
            **self._pipeline_options)
        keep, self._keep_record = self._keep_record, False
        run = _Run(plan, group, self._sitting_transcript(plan) if keep else self._open_transcript(plan))
        holder.append(run)
        self.live_record.begin(keep=keep)
        self.live_record.add_file(getattr(run.writer, "path", None))
        if not keep:
            self.names.reset()
        # With both sources and speaker labels the microphone is the user ("You").
        self.names.mic_is_you = bool(plan.config.speaker_labels and len(group.labels) > 1
                                     and "mic" in group.labels)
        self._run = run
        for source in sources:
            meter = getattr(source, "level", None)
            if meter is None:
                continue
            if self.listener.wants_levels:
                meter.on_change(partial(self._levels_moved, run))
            else:
                meter.set_measuring(False)   # nobody shows it: no numpy on every chunk for it
        self._publish(self.status_model.starting(list(group.labels), engine=plan.config.engine))
        try:
            group.start()
        except Exception as exc:  # noqa: BLE001
            self._run = None
            self._close_writer(run)
            self._fail(_plain(exc))
            return False
        self.listener.run_started(list(group.labels))
        return True

    def stop(self) -> None:
        """Ask the run to end; finals still in flight are delivered and saved, then ``run_ended``."""
        self._restart_pending = False
        self._request_stop()

    def restart(self) -> None:
        """A new run with the current settings: now, or once the running one has ended."""
        if self._run is None:
            self.start()
            return
        self._restart_pending = True
        self._request_stop()

    def _request_stop(self) -> None:
        run = self._run
        if run is None or run.stopping:
            return
        run.stopping = True
        run.group.stop()

    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> bool:
        """Quitting: stop and wait (bounded) for the pipelines and the transcript to finish.

        The caller delivers what ``post`` queued afterwards (Qt: ``sendPostedEvents``)."""
        self._restart_pending = False
        self._end_sitting_transcript()
        run = self._run
        self.stop()
        done = run.group.join(timeout) if run is not None else True
        for closer in list(self._closers):
            closer.join(timeout)
        return done

    # ---- live changes (owner thread) ---------------------------------------------------------
    def force_end(self) -> None:
        if self._run is not None:
            self._run.group.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        if self._run is not None:
            self._run.group.set_silence_threshold(int(ms))
        self._publish(self.status_model.set_silence(int(ms)))

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        """Raises ``ValueError`` when the terms break the running protocol's limits."""
        if self._run is not None:
            self._run.group.set_vocabulary(tuple(terms))

    def set_languages(self, codes: Iterable[str]) -> None:
        """The languages spoken, changed mid-session (v3); ``ValueError`` where not possible."""
        if self._run is not None:
            self._run.group.set_languages(tuple(codes))

    def set_session_api_key(self, key: Secret | None) -> None:
        """A key for this run only (no usable keyring); never saved. Restarts to use it."""
        self._session_key = key if key else None
        if self._run is not None or self.status.state.value == "error":
            self.restart()

    def use_overrides(self, overrides: Mapping[str, Any]) -> None:
        """New command-line values for this run (a second launch handed them over): captions
        start, or restart, with them."""
        self.values.overrides.update(overrides)
        self.restart()

    def rename_speaker(self, label: str, name: str) -> None:
        """"A is Dana" for this session: every front shows it, the transcript records it (so
        exports use the name). A name that cannot be used is refused in plain words."""
        try:
            clean = self.names.rename(label, name)
        except ValueError as exc:
            self.listener.problem(str(exc))
            return
        writer = self._run.writer if self._run is not None else None
        if writer is not None:
            writer.rename(label, clean)
        self.listener.speaker_renamed(label, clean)

    def apply_settings(self, changed_keys: Iterable[str]) -> None:
        """The user saved these settings: restart, apply live, or leave the run alone."""
        keys = set(changed_keys or ())
        self.values.forget(keys)
        failed = self.status.state.value == "error"
        if keys & RESTART_KEYS and (self._run is not None or failed):
            self.restart()      # also retries after a failure the new settings may have fixed
        elif self._run is not None:
            if "recognition/silence_ms" in keys:
                self.set_silence_threshold(self.values.get("recognition/silence_ms"))
            if "recognition/vocabulary" in keys:
                try:
                    self.set_vocabulary(self.values.get("recognition/vocabulary"))
                except ValueError as exc:
                    self.listener.problem(str(exc))
        if "recognition/silence_ms" in keys:
            self._publish(self.status_model.set_silence(self.values.get("recognition/silence_ms")))

    # ---- worker reports, handled on the owner thread ----------------------------------------
    def _on_event(self, run: _Run, label: str, event: Event) -> None:
        if isinstance(event, LLMResponse) and run.plan.translate_to:
            event = self._translation_of(run, event)
            if event is None:
                return
        if isinstance(event, Final):
            self.names.note_final(event.id, event.speaker, label)
            if run.plan.translate_to and event.text.strip():
                run.untranslated[event.id] = self._clock()
        elif isinstance(event, Revision) and self.names.revise(event.id, event.speaker) is None:
            return                  # an unknown final, the same speaker, or the microphone
        self.live_record.add(event, label)
        if run.writer is not None:
            run.writer.on_event(event, label)
        latency = run.group.latency_ms(label, event) if isinstance(event, Final) else None
        if latency is not None:
            self._publish(self.status_model.set_latency(latency))
        self.listener.caption_event(label, event, latency)
        if isinstance(event, StreamError) and event.recovery in (Recovery.STOP, Recovery.BUG):
            self.listener.problem(event.message, from_captions=True)
        if self._run is run:
            self._publish(self.status_model.on_event(label, event))

    def _translation_of(self, run: _Run, answer: LLMResponse) -> Translation | None:
        """The gateway's answer as the translation of its final, or ``None`` (with a notice
        that translation is unavailable and why) when it holds no text."""
        if answer.final_id is None:
            return None
        run.untranslated.pop(answer.final_id, None)
        text = (answer.text or "").strip()
        if not text:
            self._translation_failed(run, translation.unavailable_message(answer.error))
            return None
        run.translation_failing = False
        if self._run is run:
            self._publish(self.status_model.translation_arrived())
        return Translation(answer.final_id, run.plan.translate_to, text)

    def _check_translations(self, run: _Run) -> None:
        now = self._clock()
        late = [i for i, at in run.untranslated.items() if now - at >= TRANSLATION_WAIT_S]
        for final_id in late:
            del run.untranslated[final_id]
        if late:
            self._translation_failed(run, f"Translation unavailable: no translation arrived "
                                          f"within {TRANSLATION_WAIT_S:.0f} s; captions continue.")

    def _translation_failed(self, run: _Run, message: str) -> None:
        """Said once per stretch of failures (every front), and shown while it lasts."""
        log.info("%s", message)
        if not run.translation_failing:
            run.translation_failing = True
            self.listener.notice(message)
        if self._run is run:
            self._publish(self.status_model.translation_unavailable(message))

    def _levels_moved(self, run: _Run) -> None:
        """(capture thread) A meter's display moved: one report on its way at a time."""
        if not run.levels_posted.is_set():
            run.levels_posted.set()
            self._post(partial(self._tell_levels, run))

    def _tell_levels(self, run: _Run) -> None:
        run.levels_posted.clear()       # before reading: a move after this read is told again
        if self._run is run and not run.ended:
            self.listener.levels_changed(run.group.levels())

    def _on_group_done(self, run: _Run) -> None:
        if run.ended:
            return
        run.ended = True
        if self._run is run:
            self._run = None
        if self._restart_pending and run.writer is not None and run.writer.error is None:
            self._sitting_writer, run.writer = run.writer, None   # the sitting goes on in it
        else:
            self._close_writer(run)
        self.live_record.end()
        group = run.group
        outcome = RunOutcome(group.fatal_error, group.fatal_source_error, run.stopping)
        self.last_outcome = outcome
        if outcome.error is not None and not run.stopping:
            self._publish(self.status_model.failed(outcome.error.message))
        elif self._restart_pending:
            pass                    # "Connecting…" follows at once; no "stopped" in between
        elif self.status.state.value != "error" or run.stopping:
            self._publish(self.status_model.stopped())
        self.listener.run_ended(outcome)
        if self._restart_pending:
            self._restart_pending = False
            self._keep_record = True        # the same sitting: History keeps what was said
            self.start()

    # ---- building blocks ---------------------------------------------------------------------
    def _session_for(self, plan: RunPlan, listener):
        create = self._create_session
        if create is None:
            from app.core.session_factory import create_session as create
            self._create_session = create
        return create(plan.config, listener, api_key=plan.api_key, token_url=plan.token_url)

    def _sources_opener(self):
        if self._open_sources is None:
            from app.core.audio.devices import open_sources
            self._open_sources = open_sources
        return self._open_sources

    def _transcripts_wanted(self) -> bool:
        if self._save_transcripts is not None:
            return self._save_transcripts
        return bool(self.settings.get("transcript/enabled"))

    def _open_transcript(self, plan: RunPlan):
        if not self._transcripts_wanted():
            return None
        from app.core.transcript import TranscriptWriter, prune
        try:
            days = self.settings.get("transcript/retention_days")
            if days:
                prune(self.transcript_dir, days)
            protocol = "local" if plan.config.engine == "local" else plan.config.protocol
            return TranscriptWriter(self.transcript_dir, protocol=protocol, source=plan.source_spec,
                                    final_ids=plan.translate_to is not None)
        except OSError as exc:
            self.listener.problem(f"Captions are running but cannot be saved: {exc}")
            return None

    def _sitting_transcript(self, plan: RunPlan):
        """A restart within the sitting: the same file, with a record saying what changed."""
        writer, self._sitting_writer = self._sitting_writer, None
        if writer is None or not self._transcripts_wanted():
            if writer is not None:
                self._close_writer(_Run(plan, None, writer))
            return self._open_transcript(plan)
        protocol = "local" if plan.config.engine == "local" else plan.config.protocol
        writer.restart(protocol, plan.source_spec)
        return writer

    def _end_sitting_transcript(self) -> None:
        writer, self._sitting_writer = self._sitting_writer, None
        if writer is not None:
            self._close_writer(_Run(None, None, writer))

    def _close_writer(self, run: _Run) -> None:
        """Close the transcript off the owner thread (the last fsync can be slow on a busy disk)."""
        writer, run.writer = run.writer, None
        if writer is None:
            return

        def close() -> None:
            try:
                writer.close()
            except OSError as exc:
                self._post(partial(self.listener.problem,
                                   f"The transcript could not be closed cleanly: {exc}"))
            finally:
                self._closers.remove(thread)

        thread = threading.Thread(target=close, name="transcript-close", daemon=True)
        self._closers.append(thread)
        thread.start()

    def _warn_if_insecure(self, plan: RunPlan) -> None:
        """An opted-in plain-text link: said once per run, and shown while captions run."""
        from app.core.streaming.urls import insecure_status, insecure_warning
        if plan.config.engine == "local":
            self.status_model.set_warning(None)
            return
        self.status_model.set_warning(insecure_status(plan.config))
        if warning := insecure_warning(plan.config):
            log.warning("%s", warning)
            self.listener.problem(warning)

    def _fail(self, message: str) -> None:
        self._publish(self.status_model.failed(message))
        self.listener.problem(message)

    def _publish(self, status: Status) -> None:
        if self.status_model.changed:
            self.listener.status_changed(status)


def _plain(exc: Exception) -> str:
    error = getattr(exc, "error", None)          # SessionError carries a StreamError
    if isinstance(error, StreamError):
        return error.message
    text = str(exc).strip()
    return text or type(exc).__name__


def _pipeline_group():
    """``PipelineGroup``, imported at the first run: it brings numpy and the streaming clients,
    which the overlay's first frame does not need."""
    from app.core.pipeline_group import PipelineGroup
    return PipelineGroup
