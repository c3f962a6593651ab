"""Keeps one ``CaptionShare`` in step with the saved preferences, for the app.

Starting binds a port and stopping waits for senders (bounded): both run on a worker thread of
this object, never on the caller's (the GUI thread must not wait). A change of looks only
restyles the running page; a change of address or targets starts sharing anew (new token).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

from app.core.events import Event
from app.core.sharing.config import ShareConfig, ShareConfigError, share_config_from

log = logging.getLogger(__name__)


def server_part(config: ShareConfig) -> tuple:
    return (config.serve, config.host, config.port, config.max_clients, config.history,
            config.client_queue)


def target_part(config: ShareConfig) -> tuple:
    return (config.zoom_url, config.youtube_url, config.webhook_url, config.caption_lang,
            config.request_timeout_s, config.backoff_s)


class ShareRunner:
    def __init__(self, on_change: Callable[[], None] = lambda: None,
                 on_status: Callable[[str, str], None] = lambda name, text: None,
                 overrides: dict | None = None,
                 on_problem: Callable[[str], None] = lambda text: None) -> None:
        self._on_change = on_change
        self._on_status = on_status
        self._on_problem = on_problem
        self._failing: set[str] = set()
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._share = None                   # the running CaptionShare
        self._config: ShareConfig | None = None
        self.error = ""            # why sharing is not running as configured, plain words
        self._jobs: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- any thread -------------------------------------------------------------------------

    def apply(self, values: dict) -> None:
        """Preferences (a snapshot, or the dialog's values) → sharing as they say."""
        try:
            config = share_config_from(values, use_saved_targets=True, **self.overrides)
        except ShareConfigError as exc:
            self.error = str(exc)
            self._submit(self._stop)
            return
        self.error = ""
        self._submit(lambda: self._reconcile(config))

    def on_event(self, label: str, event: Event, latency_ms: float | None = None,
                 speaker: str | None = None) -> None:
        share = self._share
        if share is not None:
            share.on_event(label, event, latency_ms, speaker)

    def regenerate_token(self) -> None:
        self._submit(self._regenerate)

    def shutdown(self) -> None:
        """Stop sharing; returns at once (the worker finishes within a few seconds)."""
        self._submit(self._stop)

    @property
    def url(self) -> str | None:
        share = self._share
        return share.url if share is not None else None

    @property
    def running(self) -> bool:
        return self._share is not None

    @property
    def viewers(self) -> int:
        share = self._share
        return share.viewers if share is not None else 0

    def statuses(self) -> dict[str, str]:
        share = self._share
        return share.statuses() if share is not None else {}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Tests and shutdown paths off the GUI thread: wait for queued starts/stops."""
        done = threading.Event()
        self._submit(done.set)
        return done.wait(timeout)

    # --- worker thread ----------------------------------------------------------------------

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._jobs.put(job)
            if self._worker is None or not self._worker.is_alive():
                # Not a daemon: at exit the interpreter lets a pending stop finish (bounded).
                self._worker = threading.Thread(target=self._work, name="share-runner")
                self._worker.start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._worker = None
                        return
                continue
            try:
                job()
            except Exception:
                log.exception("caption sharing job failed")

    def _reconcile(self, config: ShareConfig) -> None:
        if not config.enabled:
            self._stop()
            return
        current, share = self._config, self._share
        if current is not None and share is not None and server_part(current) == server_part(config):
            # Same page and link: people who scanned the QR code stay connected.
            if target_part(current) != target_part(config):
                for note in share.retarget(config):
                    log.warning("%s", note)
            if current.style != config.style:
                share.restyle(config.style)
            self._config = config
            self._on_change()
            return
        self._stop(notify=False)
        from app.core.sharing.share import CaptionShare, ShareStartError   # asyncio: only when sharing
        try:
            self._share = CaptionShare(config, on_status=self._status).start()
            self._config = config
        except ShareStartError as exc:
            self.error = str(exc)
        self._on_change()

    def _stop(self, notify: bool = True) -> None:
        share, self._share, self._config = self._share, None, None
        if share is not None:
            for note in share.stop():
                log.warning("%s", note)
        if notify:
            self._on_change()

    def _regenerate(self) -> None:
        if self._share is not None:
            self._share.regenerate_token()
            self._on_change()

    def _status(self, name: str, text: str) -> None:
        # A target that starts failing is worth one notification, not one per retry.
        if "Retrying" in text:
            if name not in self._failing:
                self._failing.add(name)
                self._on_problem(text)
        elif text.endswith("sending"):
            self._failing.discard(name)
        self._on_status(name, text)
