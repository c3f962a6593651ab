"""``CaptionShare``: the sink a caption run feeds; owns the sharing loop and its thread.

``on_event`` is called from capture/session threads and only hands the event to the loop
(``call_soon_threadsafe``): it never blocks and never raises. ``stop`` is bounded: senders get
a short grace to deliver what is queued, then everything is cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from typing import Callable

from app.core.event_json import event_json
from app.core.events import Event
from app.core.sharing.config import ShareConfig, redact_url
from app.core.sharing.feed import Feed

log = logging.getLogger(__name__)

START_TIMEOUT_S = 5.0


class ShareStartError(RuntimeError):
    """Sharing could not start (port taken, address not on this computer); plain words."""


def _event_json(event: Event, latency_ms: float | None = None,
                speaker: str | None = None) -> dict | None:
    return event_json(event, latency_ms, speaker=speaker)   # the --json records, one format


class CaptionShare:
    def __init__(self, config: ShareConfig,
                 on_status: Callable[[str, str], None] | None = None) -> None:
        self.config = config.validate()
        self._on_status = on_status
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = threading.Event()
        self.feed: Feed | None = None
        self.server = None
        self.targets: list = []
        self._tasks: list = []
        self._statuses: dict[str, str] = {}
        self._url: str | None = None

    # --- public API (any thread) ------------------------------------------------------------

    def start(self) -> "CaptionShare":
        """Binds the server (if any) and starts the targets; raises ``ShareStartError``."""
        self._thread = threading.Thread(target=self._run, name="caption-share", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.stop()
            raise ShareStartError("Caption sharing did not start in time.")
        if self._start_error is not None:
            self._thread.join(1.0)
            raise ShareStartError(_start_message(self.config, self._start_error))
        return self

    def on_event(self, label: str, event: Event, latency_ms: float | None = None,
                 speaker: str | None = None) -> None:
        """``speaker``: the display name of a final's or revision's speaker (None: no name)."""
        loop = self._loop
        if loop is None or self._stopped.is_set():
            return
        try:
            record = _event_json(event, latency_ms, speaker)
            if record is None:
                return
            record["source"] = label
            loop.call_soon_threadsafe(self._dispatch, record, time.time())
        except RuntimeError:     # the loop closed between the check and the call
            pass
        except Exception:        # sharing must never take captions down with it
            log.exception("caption sharing could not take an event")

    def listener(self, label: str) -> Callable[[Event], None]:
        return lambda event: self.on_event(label, event)

    @property
    def url(self) -> str | None:
        """The share link (with its token when one is needed); None without a server."""
        return self._url

    def regenerate_token(self) -> str | None:
        """A new link; people holding the old one are disconnected. Returns the new URL."""
        loop, server = self._loop, self.server
        if loop is None or server is None or server.token is None:
            return self._url
        done = threading.Event()

        def renew():
            server.regenerate_token()
            self._url = server.url
            done.set()
        loop.call_soon_threadsafe(renew)
        done.wait(1.0)   # the loop only swaps a string; never waits on a client
        return self._url

    def restyle(self, style: dict) -> None:
        """New looks for the page (appearance edited while sharing); the link stays."""
        self.config = dataclasses.replace(self.config, style=dict(style))
        loop, server, config = self._loop, self.server, self.config
        if loop is not None and server is not None:
            loop.call_soon_threadsafe(setattr, server, "config", config)

    def statuses(self) -> dict[str, str]:
        return dict(self._statuses)

    @property
    def viewers(self) -> int:
        return len(self.server.clients) if self.server is not None else 0

    def stop(self, grace_s: float = 3.0, timeout_s: float = 5.0) -> list[str]:
        """Ends sharing within ``timeout_s``; returns notices about captions left unsent."""
        if self._stopped.is_set() and self._loop is None:
            return []
        self._stopped.set()
        loop, notes = self._loop, []
        deadline = time.monotonic() + timeout_s
        if loop is not None and self._thread is not None and self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(min(grace_s, timeout_s)), loop)
            try:
                notes = future.result(timeout_s)
            except Exception as exc:     # timed out or failed: the thread is a daemon
                log.warning("caption sharing did not stop cleanly: %s", type(exc).__name__)
            self._thread.join(max(0.1, deadline - time.monotonic()))
        return notes

    # --- the loop thread --------------------------------------------------------------------

    def _status(self, name: str, text: str) -> None:
        self._statuses[name] = text
        if self._on_status is not None:
            try:
                self._on_status(name, text)
            except Exception:
                log.exception("sharing status listener failed")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except BaseException as exc:     # start failures are reported through start()
            if not self._ready.is_set():
                self._start_error = exc
                self._ready.set()
            else:
                log.exception("caption sharing stopped unexpectedly")
        finally:
            self._loop = None
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self, loop) -> None:
        import aiohttp
        from app.core.sharing.server import CaptionServer
        cfg = self.config
        self.feed = Feed(cfg.history)
        if cfg.serve:
            self.server = CaptionServer(cfg, self.feed)
            await self.server.start()
            self._url = self.server.url
        self._stop_request = asyncio.Event()
        self._session = aiohttp.ClientSession(headers={"User-Agent": "caption-overlay"})
        self._start_targets(cfg)
        self._loop = loop
        self._ready.set()
        try:
            await self._stop_request.wait()
        finally:
            await self._stop_targets()
            await self._session.close()
            if self.server is not None:
                await self.server.close()

    def _start_targets(self, cfg: ShareConfig) -> None:
        from app.core.sharing.senders import WebhookTarget, YouTubeTarget, ZoomTarget
        common = dict(timeout_s=cfg.request_timeout_s, backoff_s=cfg.backoff_s,
                      on_status=self._status)
        targets = []
        if cfg.zoom_url:
            targets.append(ZoomTarget(cfg.zoom_url, lang=cfg.caption_lang, **common))
        if cfg.youtube_url:
            targets.append(YouTubeTarget(cfg.youtube_url, **common))
        if cfg.webhook_url:
            targets.append(WebhookTarget(cfg.webhook_url, **common))
        self.targets = targets
        self._tasks = [asyncio.ensure_future(t.run(self._session)) for t in targets]

    async def _stop_targets(self) -> list[str]:
        notes = [f"{t.name}: {len(t.queue)} caption(s) were not accepted before sharing stopped "
                 f"({redact_url(t.url)})." for t in self.targets if t.queue]
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        return notes

    def retarget(self, config: ShareConfig, timeout_s: float = 5.0) -> list[str]:
        """New caption targets (URLs, language) while the page and its link stay as they are.
        Blocks up to ``timeout_s``: call it from a worker thread, never the GUI thread."""
        config = config.validate()
        loop = self._loop
        if loop is None:
            return []

        async def swap() -> list[str]:
            notes = await self._stop_targets()
            for name in list(self._statuses):
                self._statuses.pop(name, None)
            self.config = dataclasses.replace(config, style=self.config.style)
            self._start_targets(self.config)
            return notes
        return asyncio.run_coroutine_threadsafe(swap(), loop).result(timeout_s)

    def _dispatch(self, record: dict, received: float) -> None:
        if self.feed is None:
            return
        item = self.feed.add(record)
        if self.server is not None:
            self.server.broadcast(item)
        if item.final and self.targets:
            from app.core.sharing.senders import Caption, caption_text
            text = caption_text(record)
            if not text:
                return
            duration = max(0, int(record.get("audio_end") or 0) - int(record.get("audio_start") or 0))
            for target in self.targets:
                target.push(Caption(text, record, self.feed.event_id(item.n),
                                    received - duration / 1000))

    async def _shutdown(self, grace_s: float) -> list[str]:
        busy = [t for t in self.targets if t.queue]
        if busy:
            try:
                await asyncio.wait_for(asyncio.gather(*(t.idle.wait() for t in busy)), grace_s)
            except asyncio.TimeoutError:
                pass
        notes = await self._stop_targets()
        self._stop_request.set()
        return notes


def _start_message(config: ShareConfig, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        import errno
        where = f"{config.host}:{config.port}"
        if exc.errno == errno.EADDRINUSE:
            return f"Cannot share captions on {where}: another program already uses that port."
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"Cannot share captions on {where}: that address is not on this computer."
        if exc.errno == errno.EACCES:
            return f"Cannot share captions on {where}: ports below 1024 need administrator rights."
        return f"Cannot share captions on {where}: {exc.strerror or exc}."
    return f"Caption sharing could not start ({type(exc).__name__})."
