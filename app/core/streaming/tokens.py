"""Temporary tokens: minted with the API key (v2 POST / v3 GET), or fetched from a token broker.

A token is single-use, so every new WebSocket session gets a fresh one. Failures raise
``SessionError`` carrying a ``StreamError`` in plain words; neither the key nor a token ever
appears in an exception, a log line or a URL (the key travels only in the Authorization header).

Requests that carry the key never follow a redirect: the header would reach a host the user did
not configure. The broker (no key) may redirect to http/https of the same or a stronger scheme.
Each exchange has one overall deadline, so a peer answering a byte at a time cannot hold it.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from app import APP_ID, __version__
from app.core.credentials import Secret, parse_api_key
from app.core.engine import SessionError
from app.core.events import Recovery, StreamError
from app.core.streaming import close_codes
from app.core.streaming import transport as _transport
from app.core.streaming.deadline import Cancelled, Deadline, open_socket

log = logging.getLogger(__name__)

V2_EXPIRES_IN_S = 60        # v2 allows 60..360000; the token is redeemed at once
V3_EXPIRES_IN_S = 60        # v3 allows 1..600 (redemption window, not session length)
USER_AGENT = f"{APP_ID}/{__version__}"
MAX_BODY = 65536            # a token answer is well under 1 KiB
MAX_BROKER_REDIRECTS = 3
TOKEN_SERVICE = "The AssemblyAI token service"


def _where(url: str) -> str:
    """A URL safe to show: scheme, host and path only (no query secrets, no user:password@)."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc.rsplit('@', 1)[-1]}{p.path}"


def checked_key(key: Secret) -> Secret:
    """The key, if it could be a key at all; a fixed message otherwise (never the key's text)."""
    try:
        return parse_api_key(key.reveal())
    except ValueError as exc:
        raise SessionError(StreamError(None, f"{exc} Save the key again in Settings.",
                                       Recovery.STOP)) from None


class _Connections:
    """Remembers the HTTP connections of one exchange so the deadline can shut them, and
    opens their sockets with a name lookup that Stop and the deadline can abandon."""

    def __init__(self, deadline: Deadline) -> None:
        self.items: list[http.client.HTTPConnection] = []
        self._deadline = deadline

    def factory(self, cls):
        def make(host, **kw):
            conn = cls(host, **kw)
            conn._create_connection = self._open
            self.items.append(conn)
            return conn
        return make

    def _open(self, address, timeout=None, source_address=None):
        limit = self._deadline.remaining()
        if isinstance(timeout, (int, float)):
            limit = min(limit, timeout)
        return open_socket(address, limit, lambda: self._deadline.cancelled)

    def shut(self) -> None:
        for conn in list(self.items):
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, conns: _Connections) -> None:
        super().__init__()
        self._conns = conns

    def http_open(self, req):
        return self.do_open(self._conns.factory(http.client.HTTPConnection), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, conns: _Connections) -> None:
        super().__init__(context=_transport.tls_context())
        self._conns = conns

    def https_open(self, req):
        return self.do_open(self._conns.factory(http.client.HTTPSConnection), req,
                            context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """No redirect at all (``follow=False``), or only to http(s) of the same or a stronger scheme."""

    max_redirections = MAX_BROKER_REDIRECTS

    def __init__(self, follow: bool) -> None:
        super().__init__()
        self.follow = follow
        self.refused: str | None = None      # why, in words, for the error message

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        scheme = new.scheme.lower()
        if not self.follow:
            self.refused = "key"
        elif scheme not in ("http", "https") or (old.scheme == "https" and scheme == "http"):
            self.refused = f"scheme:{scheme or '?'}"
        elif "@" in new.netloc:
            self.refused = "userinfo"
        else:
            return super().redirect_request(req, fp, code, msg, headers, newurl)
        return None   # urllib then raises HTTPError with the 3xx status


def _redirect_error(what: str, code: int, why: str | None) -> StreamError:
    if why and why.startswith("scheme:"):
        target = why.split(":", 1)[1]
        text = (f"{what} redirected to a {target}:// address (HTTP {code}); only http:// and "
                "https:// are followed, and never from https:// to http://. Check the URL.")
    elif why == "userinfo":
        text = (f"{what} redirected to an address with a user name or password (HTTP {code}); "
                "it was not followed. Check the URL.")
    else:
        text = (f"{what} tried to redirect the request elsewhere (HTTP {code}). Redirects are not "
                "followed, so the API key only ever goes to the server you configured; check the "
                "server URL.")
    return StreamError(code, text, Recovery.STOP)


def _request(req: urllib.request.Request, what: str, timeout: float,
             hint: str = "Check the API key in Settings.", *, follow_redirects: bool = False,
             deadline: Deadline | None = None) -> dict:
    parts = urlsplit(req.full_url)
    if parts.scheme not in ("http", "https"):
        raise SessionError(StreamError(None, f"{what}: only http:// and https:// URLs are supported.",
                                       Recovery.STOP))
    if "@" in parts.netloc:
        raise SessionError(StreamError(None, f"{what}: the URL must not contain a user name or "
                                             "password.", Recovery.STOP))
    deadline = deadline or Deadline(timeout)
    conns = _Connections(deadline)
    redirects = _Redirects(follow_redirects)
    opener = urllib.request.build_opener(_HTTP(conns), _HTTPS(conns), redirects)
    try:
        deadline.check()
        with deadline.guard(conns.shut):
            with opener.open(req, timeout=max(0.1, min(timeout, deadline.remaining()))) as resp:
                body = resp.read(MAX_BODY)
        deadline.check()
    except Cancelled:
        raise
    except urllib.error.HTTPError as exc:
        if deadline.cancelled:
            raise Cancelled() from None
        if 300 <= exc.code < 400:
            raise SessionError(_redirect_error(what, exc.code, redirects.refused)) from None
        detail = None
        try:
            payload = json.loads(exc.read(4096) or b"{}")
            if isinstance(payload, dict):
                detail = str(payload.get("error") or payload.get("message") or "") or None
        except (ValueError, OSError, RecursionError, http.client.HTTPException):
            pass
        raise SessionError(close_codes.from_http_status(exc.code, what, detail, hint)) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # Fixed phrases only: http.client's texts can quote a header, i.e. the key.
        if deadline.cancelled:
            raise Cancelled() from None
        reason = getattr(exc, "reason", exc)
        late = deadline.expired or deadline.remaining() <= 0
        plain = "timed out" if late else _plain_os_error(reason)
        raise SessionError(StreamError(None, f"Could not reach {what} ({plain}); retrying.",
                                       Recovery.RECONNECT)) from None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
        raise SessionError(StreamError(None, f"{what} answered without a token. Check the URL.",
                                       Recovery.STOP))
    return data


def _plain_os_error(reason) -> str:
    if isinstance(reason, http.client.HTTPException):
        return "the answer was not valid HTTP"
    if isinstance(reason, ValueError):
        return "the request could not be sent"
    if isinstance(reason, BaseException):
        return _transport._plain(reason)
    return "network error"


def mint_v2_token(base_url: str, api_key: Secret, *, expires_in: int = V2_EXPIRES_IN_S,
                  timeout: float = 10.0, deadline: Deadline | None = None) -> str:
    """``POST {base}/v2/realtime/token`` with JSON ``{"expires_in": n}`` and a Content-Type."""
    if not 60 <= expires_in <= 360000:
        raise ValueError("v2 token expires_in must be 60-360000 seconds")
    url = base_url.rstrip("/") + "/v2/realtime/token"
    req = urllib.request.Request(
        url, data=json.dumps({"expires_in": expires_in}).encode(), method="POST",
        headers={"Authorization": checked_key(api_key).reveal(),
                 "Content-Type": "application/json", "User-Agent": USER_AGENT})
    log.debug("minting a v2 token at %s", _where(url))
    return _request(req, TOKEN_SERVICE, timeout, deadline=deadline)["token"]


def mint_v3_token(base_url: str, api_key: Secret, *, expires_in: int = V3_EXPIRES_IN_S,
                  timeout: float = 10.0, deadline: Deadline | None = None) -> str:
    """``GET {base}/v3/token?expires_in_seconds=n`` with the key in the Authorization header."""
    if not 1 <= expires_in <= 600:
        raise ValueError("v3 token expires_in_seconds must be 1-600")
    url = base_url.rstrip("/") + "/v3/token?" + urlencode({"expires_in_seconds": expires_in})
    req = urllib.request.Request(url, method="GET", headers={
        "Authorization": checked_key(api_key).reveal(), "User-Agent": USER_AGENT})
    log.debug("minting a v3 token at %s", _where(url))
    return _request(req, TOKEN_SERVICE, timeout, deadline=deadline)["token"]


def fetch_broker_token(broker_url: str, *, timeout: float = 10.0,
                       deadline: Deadline | None = None) -> str:
    """An organisation's broker: GET returning ``{"token": ...}``; falls back to POST on 405."""
    what = f"The token broker at {_where(broker_url)}"
    hint = "Ask your administrator whether this computer may use the token broker."
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    deadline = deadline or Deadline(timeout)
    try:
        return _request(urllib.request.Request(broker_url, method="GET", headers=headers),
                        what, timeout, hint, follow_redirects=True, deadline=deadline)["token"]
    except SessionError as exc:
        if exc.error.code != 405:
            raise
    log.debug("token broker refused GET; trying POST")
    req = urllib.request.Request(broker_url, data=b"{}", method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    return _request(req, what, timeout, hint, follow_redirects=True, deadline=deadline)["token"]
