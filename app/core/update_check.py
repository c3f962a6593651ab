"""The opt-in "tell me when a new version is out" check: one GET of the latest release's tag.

What goes out is a plain HTTPS GET of the project's public release feed, with a fixed
``User-Agent: caption-overlay`` (the feed refuses requests without one) and the feed's ``Accept``
type, and nothing else: no version, OS, settings, key, cookie or query string. What comes back is untrusted: only a
version-shaped ``tag_name`` is read from it, and the release page shown to the user is built
here from that tag, never taken from the reply.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from app import APP_ID, REPOSITORY, __version__

FEED_BASE = "https://api.github.com"
CHECK_INTERVAL_S = 24 * 3600       # at most one check a day
MAX_REPLY_BYTES = 512 * 1024       # a release reply is a few KB; anything bigger is not one
TIMEOUT_S = 10.0
_TAG = re.compile(r"^v?(\d{1,5})(?:\.(\d{1,5}))?(?:\.(\d{1,5}))?(?:[.-]?(a|b|rc)(\d{1,5}))?$")
_PHASES = {"a": 0, "b": 1, "rc": 2}


class UpdateCheckError(Exception):
    """The check could not say; the message is plain words for a status line or a log."""


@dataclass(frozen=True)
class UpdateInfo:
    current: str
    latest: str            # the tag's version, without a leading "v"
    newer: bool
    page_url: str          # the release's page, built from the repository and the tag

    def message(self) -> str:
        return f"Version {self.latest} is out (you have {self.current}): {self.page_url}"


def feed_url(repository: str = REPOSITORY, base: str = FEED_BASE) -> str:
    return f"{base.rstrip('/')}/repos/{repository}/releases/latest"


def release_page(tag: str, repository: str = REPOSITORY) -> str:
    return f"https://github.com/{repository}/releases/tag/{tag}"


def parse_version(text: str) -> tuple[int, int, int, int, int]:
    """"v1.2.3", "1.2", "1.2.3rc1" → a comparable tuple; pre-releases sort before the release."""
    match = _TAG.match((text or "").strip())
    if not match:
        raise ValueError(f"{text[:40]!r} is not a version")
    major, minor, patch, phase, number = match.groups()
    return (int(major), int(minor or 0), int(patch or 0),
            _PHASES[phase] if phase else 3, int(number or 0))


def is_due(last_check: float, now: float, interval_s: float = CHECK_INTERVAL_S) -> bool:
    """True when a check is due; a clock set back (last check "in the future") counts as due."""
    return last_check <= 0 or now - last_check >= interval_s or now < last_check


def interpret(reply: bytes, current: str = __version__, repository: str = REPOSITORY) -> UpdateInfo:
    """The feed's JSON reply → ``UpdateInfo``; raises ``UpdateCheckError`` on anything else."""
    try:
        data = json.loads(reply.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UpdateCheckError("The release feed sent something that is not a release description.") from None
    tag = data.get("tag_name") if isinstance(data, dict) else None
    if not isinstance(tag, str):
        raise UpdateCheckError("The release feed's reply names no release.")
    try:
        latest = parse_version(tag)
    except ValueError:
        raise UpdateCheckError("The latest release's tag is not a version number.") from None
    version = tag.strip().lstrip("v")
    return UpdateInfo(current=current, latest=version, newer=latest > parse_version(current),
                      page_url=release_page(tag.strip(), repository))


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """A moved repository redirects; a redirect off HTTPS is refused, not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.startswith("https://"):
            raise urllib.error.URLError("redirect away from https refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _default_open(request: urllib.request.Request, timeout: float):
    context = ssl.create_default_context()
    try:
        import certifi  # the CA file frozen macOS builds need (no system store OpenSSL reads)
        context.load_verify_locations(certifi.where())
    except ImportError:
        pass
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _HttpsOnlyRedirects())
    return opener.open(request, timeout=timeout)


def check(url: str | None = None, *, current: str = __version__, repository: str = REPOSITORY,
          timeout: float = TIMEOUT_S,
          opener: Callable[[urllib.request.Request, float], object] | None = None) -> UpdateInfo:
    """One GET of the feed. Blocking: call it off the GUI thread."""
    url = url or feed_url(repository)
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise UpdateCheckError("The release feed must be an https:// address.")
    request = urllib.request.Request(url, method="GET", headers={
        "User-Agent": APP_ID, "Accept": "application/vnd.github+json"})
    open_ = opener or _default_open
    try:
        with open_(request, timeout) as response:
            reply = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UpdateCheckError("No release has been published yet.") from None
        if exc.code in (403, 429):
            raise UpdateCheckError("The release feed is busy (rate limited); the check will be "
                                   "tried again tomorrow.") from None
        raise UpdateCheckError(f"The release feed answered HTTP {exc.code}.") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timed out" if isinstance(reason, (socket.timeout, TimeoutError)) else "could not be reached"
        raise UpdateCheckError(f"The release feed {kind}; the check will be tried again later.") from None
    if len(reply) > MAX_REPLY_BYTES:
        raise UpdateCheckError("The release feed's reply is too large to be a release description.")
    return interpret(reply, current, repository)


__all__ = ["UpdateInfo", "UpdateCheckError", "check", "interpret", "is_due", "parse_version",
           "feed_url", "release_page", "CHECK_INTERVAL_S"]
