"""Caption targets that receive each final over HTTP: Zoom, YouTube Live, a webhook.

Each target runs as one task on the sharing loop with its own ordered queue. A caption leaves
the queue only once the target accepted it; failures are retried with doubling backoff for as
long as the run lasts, so nothing on screen ever waits for a meeting and nothing is reordered.
Status texts never contain the URL's query: caption URLs carry signatures that act as passwords.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from app.core.sharing.zoom_lang import zoom_lang

log = logging.getLogger(__name__)

_SEQ_BODY = re.compile(r"^\s*(\d{1,12})\s*$")
MAX_STATUS_BODY = 200


@dataclass
class Caption:
    text: str               # what the target shows (speaker name included when known)
    record: dict            # the --json record
    event_id: str           # stable across retries
    spoken_at: float        # POSIX seconds when the utterance began (wall clock)
    seq: int | None = field(default=None)   # assigned on the first attempt, kept on retries
    body: str | None = None                 # built once, so a retry repeats it exactly


class SendError(Exception):
    """One failed attempt; ``str()`` is a plain-words reason without the URL."""


def caption_text(record: dict) -> str:
    text = str(record.get("text", "")).strip()
    speaker = record.get("speaker")
    return f"{speaker}: {text}" if speaker else text


def with_params(url: str, **params) -> URL:
    """``url`` + ``&k=v``, leaving the existing (signed) query byte for byte as pasted."""
    joiner = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    return URL(url + joiner + urlencode(params), encoded=True)


class Target:
    name = "target"

    def __init__(self, url: str, *, timeout_s: float, backoff_s: tuple[float, float],
                 on_status: Callable[[str, str], None]) -> None:
        self.url = url.strip()
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.timeout_s = timeout_s
        self.backoff = backoff_s
        self._on_status = on_status
        self.queue: deque[Caption] = deque()
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.sent = 0
        self.failures = 0
        self.status = ""
        self.session: aiohttp.ClientSession | None = None

    def push(self, caption: Caption) -> None:
        self.queue.append(caption)
        self.idle.clear()
        self._wake.set()

    def _set_status(self, text: str) -> None:
        if text != self.status:
            self.status = text
            self._on_status(self.name, text)

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        delay = self.backoff[0]
        synced = False
        self._set_status(f"{self.name}: connecting")
        while True:
            try:
                if not synced:
                    await self.sync()
                    synced = True
                    if not self.queue or self.status.endswith("connecting"):
                        self._set_status(f"{self.name}: sending")
                if not self.queue:
                    self.idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                caption = self.queue[0]
                if caption.seq is None:
                    caption.seq = self.next_seq()
                await self.send(caption)
                self.accepted(caption)
                self.queue.popleft()
                self.sent += 1
                delay = self.backoff[0]
                # The error stays shown until a caption really got through.
                self._set_status(f"{self.name}: sending")
            except SendError as exc:
                self.failures += 1
                synced = False
                if not self.queue:
                    self.idle.set()
                waiting = len(self.queue)
                self._set_status(f"{self.name}: {exc} Retrying in {delay:g} s"
                                 + (f" ({waiting} waiting)." if waiting else "."))
                log.info("%s: attempt failed: %s", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])

    # --- per target -------------------------------------------------------------------------

    async def sync(self) -> None:
        """Learn where to continue (start, and after every failure)."""

    def next_seq(self) -> int:
        return 0

    def accepted(self, caption: Caption) -> None:
        pass

    async def send(self, caption: Caption) -> None:
        raise NotImplementedError

    def _describe(self, status: int) -> str:
        return f"answered HTTP {status}."

    async def _request(self, method: str, url: URL, **kw) -> str:
        assert self.session is not None
        try:
            async with self.session.request(method, url, timeout=self.timeout,
                                            allow_redirects=False, **kw) as resp:
                body = await resp.content.read(64 * 1024)
                if not 200 <= resp.status < 300:
                    raise SendError(self._describe(resp.status))
                return body.decode("utf-8", "replace")
        except asyncio.TimeoutError:
            raise SendError(f"no answer within {self.timeout_s:g} s.") from None
        except aiohttp.ClientError as exc:
            raise SendError(f"cannot reach the server ({type(exc).__name__}).") from None


class ZoomTarget(Target):
    """Zoom's caption API: ``seq`` continues from ``GET …/closedcaption/seq``, +1 per caption;
    ``lang`` is the caption's detected language where known, else ``lang`` (``zoom_lang``)."""

    name = "Zoom"

    def __init__(self, url: str, *, lang: str, **kw) -> None:
        super().__init__(url, **kw)
        self.lang = lang
        self.last_seq: int | None = None

    def seq_url(self) -> URL:
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/") + "/seq"
        return URL(urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")), encoded=True)

    async def sync(self) -> None:
        body = await self._request("GET", self.seq_url())
        match = _SEQ_BODY.match(body)
        if not match:
            raise SendError("the sequence number answer was not a number.")
        last = int(match.group(1))
        self.last_seq = last
        if self.queue and self.queue[0].seq is not None:
            head = self.queue[0]
            if last >= head.seq:        # accepted, only the answer was lost: never send twice
                self.queue.popleft()
                self.sent += 1
                if not self.queue:
                    self.idle.set()
            else:
                head.seq = last + 1

    def next_seq(self) -> int:
        return (self.last_seq or 0) + 1

    def accepted(self, caption: Caption) -> None:
        self.last_seq = caption.seq

    async def send(self, caption: Caption) -> None:
        lang = zoom_lang(caption.record.get("language"), self.lang)
        await self._request("POST", with_params(self.url, seq=caption.seq, lang=lang),
                            data=caption.text.encode("utf-8"),
                            headers={"Content-Type": "text/plain; charset=utf-8"})

    def _describe(self, status: int) -> str:
        why = {400: "the meeting has not started or the caption URL expired",
               403: "the caption URL was refused; copy the API token again",
               405: "this is not Zoom's caption API URL"}.get(status)
        return f"answered HTTP {status}" + (f" ({why})." if why else ".")


def youtube_time(t: float) -> str:
    stamp = datetime.fromtimestamp(t, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


class YouTubeTarget(Target):
    """YouTube Live "POST captions to URL": ``seq`` +1 per post, body = UTC time line + text."""

    name = "YouTube"

    def __init__(self, url: str, **kw) -> None:
        super().__init__(url, **kw)
        self.last_seq = 0
        self._last_time = 0.0

    def next_seq(self) -> int:
        return self.last_seq + 1

    def accepted(self, caption: Caption) -> None:
        self.last_seq = caption.seq

    def body(self, caption: Caption) -> str:
        # Times never go backwards: YouTube places cues on the stream's clock in order.
        t = max(caption.spoken_at, self._last_time)
        self._last_time = t
        text = "<br>".join(line.strip() for line in caption.text.splitlines() if line.strip())
        return f"{youtube_time(t)}\n{text}\n"

    async def send(self, caption: Caption) -> None:
        if caption.body is None:
            caption.body = self.body(caption)
        await self._request("POST", with_params(self.url, seq=caption.seq),
                            data=caption.body.encode("utf-8"),
                            headers={"Content-Type": "text/plain; charset=utf-8"})


class WebhookTarget(Target):
    """Each final as its ``--json`` record; the event id lets a receiver ignore retried copies."""

    name = "Webhook"

    async def send(self, caption: Caption) -> None:
        await self._request("POST", URL(self.url, encoded=True),
                            data=json.dumps(caption.record, ensure_ascii=False).encode("utf-8"),
                            headers={"Content-Type": "application/json; charset=utf-8",
                                     "X-Caption-Event-Id": caption.event_id})
