"""Runs one ``CaptionPipeline`` per audio source on its own QThread and relays events to the GUI.

Threading (docs/architecture.md): capture and recognition never touch widgets. Events come from
capture/session threads into a private signal connected *queued* to a slot of this object (which
lives on the GUI thread); that slot re-emits the public ``event`` signal, so every receiver —
bound slot or lambda — runs on the GUI thread. Stop is a thread-safe call into the pipelines
(their own ``threading.Event``), never a queued slot; ``quit()`` comes before ``wait()``; a
finished QThread is waited for and then simply dropped (no ``deleteLater`` on objects Python holds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, Qt, Signal, Slot

from app.core.audio.level import Level
from app.core.audio.source import AudioSource
from app.core.engine import SpeechSession
from app.core.events import Final, Listener, Recovery, StreamError
from app.core.pipeline import CaptionPipeline

log = logging.getLogger(__name__)

STOP_WAIT_MS = 30_000       # pipeline stop is bounded (session stop + connector join) well below this
_ARRIVALS_KEPT = 512        # finals whose arrival time is remembered for latency_ms()


class _PipelineThread(QThread):
    """A self-contained loop with its own abort (``pipeline.stop()``): subclassing QThread fits."""

    def __init__(self, pipeline: CaptionPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            self.pipeline.run()
        except Exception as exc:  # never let a bug kill the process from a worker thread
            log.exception("caption pipeline %r crashed", self.pipeline.label)
            self.crash = exc


class CaptionSession(QObject):
    event = Signal(str, object)      # (source label, Event) — delivered on the GUI thread
    finished = Signal()              # every pipeline ended (stop(), end of file, or fatal error)

    _from_worker = Signal(str, object)   # emitted on any thread; queued to _deliver

    def __init__(self, sources: list[AudioSource],
                 session_factory: Callable[[Listener], SpeechSession], parent=None,
                 **pipeline_options) -> None:
        super().__init__(parent)
        if not sources:
            raise ValueError("A caption session needs at least one audio source.")
        self._sources = list(sources)
        self._factory = session_factory
        self._options = pipeline_options
        self._pipelines: dict[str, CaptionPipeline] = {}
        self._workers: list[_PipelineThread] = []
        self._arrivals: OrderedDict[int, tuple[Final, float]] = OrderedDict()
        self._arrivals_lock = threading.Lock()
        self._finished_emitted = True
        self.fatal_error: StreamError | None = None
        self._from_worker.connect(self._deliver, Qt.QueuedConnection)

    # --- labels -----------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self._pipelines) or self._unique_labels()

    def _unique_labels(self) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for s in self._sources:
            base = getattr(s, "label", "") or "audio"
            seen[base] = seen.get(base, 0) + 1
            out.append(base if seen[base] == 1 else f"{base}{seen[base]}")
        return out

    @property
    def running(self) -> bool:
        return any(w.isRunning() for w in self._workers)

    # --- lifecycle (GUI thread) --------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self.fatal_error = None
        self._pipelines.clear()
        self._workers.clear()
        for label, source in zip(self._unique_labels(), self._sources):
            pipeline = CaptionPipeline(source, self._factory, self._listener_for(label),
                                       label=label, **self._options)
            self._pipelines[label] = pipeline
            worker = _PipelineThread(pipeline)
            worker.setObjectName(f"captions-{label}")
            # Rule 2: every connection before start().
            worker.finished.connect(self._worker_finished, Qt.QueuedConnection)
            self._workers.append(worker)
        self._finished_emitted = False
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        """Stop every pipeline (finals flushed) and join their threads; returns when they ended."""
        for pipeline in self._pipelines.values():
            pipeline.stop()
        deadline = time.monotonic() + STOP_WAIT_MS / 1000
        for worker in list(self._workers):
            worker.quit()                      # rule 4: quit() before wait()
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            if not worker.wait(remaining):
                log.error("caption thread %s did not stop in time", worker.objectName())
        self._collect()

    # --- controls (any thread; pipelines are thread-safe) -------------------------------------
    def force_end(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        for pipeline in self._pipelines.values():
            pipeline.set_silence_threshold(ms)

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        terms = tuple(terms)
        for pipeline in self._pipelines.values():
            pipeline.set_vocabulary(terms)

    # --- what the UI pulls -------------------------------------------------------------------
    def levels(self) -> dict[str, Level]:
        return {label: source.level.snapshot()
                for label, source in zip(self._unique_labels(), self._sources)}

    def latency_ms(self, label: str, final: Final) -> float | None:
        """Speech end → final arrival (ms): arrival − stream origin − final.audio_end."""
        pipeline = self._pipelines.get(label)
        origin = pipeline.stream_time_origin if pipeline else None
        if origin is None:
            return None
        with self._arrivals_lock:
            entry = self._arrivals.get(id(final))
        arrived = entry[1] if entry is not None and entry[0] is final else time.monotonic()
        return (arrived - origin) * 1000.0 - final.audio_end

    # --- plumbing ----------------------------------------------------------------------------
    def _listener_for(self, label: str) -> Listener:
        def on_event(event) -> None:          # capture/session threads
            if isinstance(event, Final):
                with self._arrivals_lock:
                    self._arrivals[id(event)] = (event, time.monotonic())
                    while len(self._arrivals) > _ARRIVALS_KEPT:
                        self._arrivals.popitem(last=False)
            self._from_worker.emit(label, event)
        return on_event

    @Slot(str, object)
    def _deliver(self, label: str, event) -> None:   # GUI thread
        self.event.emit(label, event)

    @Slot()
    def _worker_finished(self) -> None:              # GUI thread
        if not any(w.isRunning() for w in self._workers):
            self._collect()

    def _collect(self) -> None:
        """All threads ended: record why, drop the thread objects, announce it once."""
        still = [w for w in self._workers if w.isRunning()]
        done = [w for w in self._workers if not w.isRunning()]
        for worker in done:
            worker.wait()                     # returns at once: the thread has ended
            if self.fatal_error is None:
                if worker.pipeline.fatal_error is not None:
                    self.fatal_error = worker.pipeline.fatal_error
                elif worker.crash is not None:
                    self.fatal_error = StreamError(
                        None, f"Captioning of {worker.pipeline.label} stopped after an internal "
                        f"error: {worker.crash}", Recovery.BUG)
        self._workers = still                 # rule 5: drop references; no deleteLater
        if not still and not self._finished_emitted:
            self._finished_emitted = True
            # Events the workers queued before they ended are delivered first: finished is last.
            QCoreApplication.sendPostedEvents(self, QEvent.MetaCall)
            self.finished.emit()
