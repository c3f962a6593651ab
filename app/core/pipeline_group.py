"""One ``CaptionPipeline`` per audio source, each on its own thread, ended together.

Nothing here blocks its caller: ``start`` and ``stop`` return at once; a watcher thread waits for
the pipelines, ends them all when one fails for good (a refused key or a vanished file ends the
run, it is not captioned by halves), and calls ``on_done`` once, from its own thread, after the
last pipeline has ended and every event of theirs has been handed to the listener.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

from app.core.audio.errors import AudioSourceError
from app.core.audio.level import Level
from app.core.audio.source import AudioSource
from app.core.engine import SpeechSession
from app.core.events import Event, Final, Listener, Recovery, StreamError
from app.core.pipeline import CaptionPipeline

log = logging.getLogger(__name__)

# The watcher wakes when a pipeline thread ends; this is only how often it also looks for a
# pipeline that failed for good but is still closing (then the others are stopped).
WATCH_INTERVAL_S = 1.0


def unique_labels(sources: Iterable[AudioSource]) -> list[str]:
    """Each source's label, numbered when two share one ("file", "file2")."""
    seen: dict[str, int] = {}
    out = []
    for source in sources:
        base = getattr(source, "label", "") or "audio"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}{seen[base]}")
    return out


class PipelineGroup:
    def __init__(self, sources: list[AudioSource],
                 session_factory: Callable[[Listener], SpeechSession],
                 listener: Callable[[str, Event], None], on_done: Callable[[], None],
                 **pipeline_options) -> None:
        if not sources:
            raise ValueError("Captions need at least one audio source.")
        self.labels = unique_labels(sources)
        self._sources = dict(zip(self.labels, sources))
        self._on_done = on_done
        self.pipelines: dict[str, CaptionPipeline] = {
            label: CaptionPipeline(source, session_factory,
                                   lambda event, _label=label: listener(_label, event),
                                   label=label, **pipeline_options)
            for label, source in self._sources.items()}
        self._threads: list[threading.Thread] = []
        self._crashes: dict[str, BaseException] = {}
        self._watcher: threading.Thread | None = None
        self._ended = threading.Event()    # a pipeline thread finished
        self._finished = 0                 # how many (counted before ``_ended`` is set)
        self._count_lock = threading.Lock()
        self.fatal_error: StreamError | None = None
        self.fatal_source_error: AudioSourceError | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, args=(label, p), daemon=True,
                                          name=f"captions-{label}")
                         for label, p in self.pipelines.items()]
        for thread in self._threads:
            thread.start()
        self._watcher = threading.Thread(target=self._watch, name="captions-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Ask every pipeline to finish (finals flushed); returns at once."""
        for pipeline in self.pipelines.values():
            pipeline.stop()

    def join(self, timeout: float) -> bool:
        """Wait (bounded) until the group has ended and ``on_done`` has run. Only for quitting."""
        watcher = self._watcher
        if watcher is None:
            return True
        watcher.join(timeout)
        return not watcher.is_alive()

    @property
    def alive(self) -> bool:
        return self._watcher is not None and self._watcher.is_alive()

    # ---- live controls (any thread) ----------------------------------------------------------
    def force_end(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        for pipeline in self.pipelines.values():
            pipeline.set_silence_threshold(ms)

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        terms = tuple(terms)
        for pipeline in self.pipelines.values():
            pipeline.set_vocabulary(terms)

    def set_languages(self, codes: Iterable[str]) -> None:
        codes = tuple(codes)
        for pipeline in self.pipelines.values():
            pipeline.set_languages(codes)

    # ---- what the fronts pull ----------------------------------------------------------------
    def levels(self) -> dict[str, Level]:
        return {label: source.level.snapshot() for label, source in self._sources.items()
                if getattr(source, "level", None) is not None}

    def latency_ms(self, label: str, final: Final) -> float | None:
        pipeline = self.pipelines.get(label)
        return pipeline.latency_ms(final) if pipeline is not None else None

    # ---- threads -----------------------------------------------------------------------------
    def _run(self, label: str, pipeline: CaptionPipeline) -> None:
        try:
            pipeline.run()
        except Exception as exc:  # never let a bug kill the process from a worker thread
            log.exception("caption pipeline %r crashed", label)
            self._crashes[label] = exc
        finally:
            with self._count_lock:
                self._finished += 1
            self._ended.set()

    def _watch(self) -> None:
        try:
            while not self._all_finished():
                self._ended.wait(WATCH_INTERVAL_S)
                self._ended.clear()
                if any(p.fatal_error is not None for p in self.pipelines.values()):
                    self.stop()            # one source failed for good: end the run
            for thread in self._threads:
                thread.join()              # finished: returns at once
            self._record_outcome()
        finally:
            self._on_done()

    def _all_finished(self) -> bool:
        with self._count_lock:
            return self._finished >= len(self._threads)

    def _record_outcome(self) -> None:
        for label, pipeline in self.pipelines.items():
            if pipeline.fatal_source_error is not None and self.fatal_source_error is None:
                self.fatal_source_error = pipeline.fatal_source_error
            if self.fatal_error is not None:
                continue
            if pipeline.fatal_error is not None:
                self.fatal_error = pipeline.fatal_error
            elif label in self._crashes:
                self.fatal_error = StreamError(
                    None, f"Captioning of {label} stopped after an internal error: "
                    f"{self._crashes[label]}", Recovery.BUG)

