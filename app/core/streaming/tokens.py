"""Temporary tokens: minted with the API key (v2 POST / v3 GET), or fetched from a token broker.

A token is single-use, so every new WebSocket session gets a fresh one. Failures raise
``SessionError`` carrying a ``StreamError`` in plain words; neither the key nor a token ever
appears in an exception, a log line or a URL (the key travels only in the Authorization header).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from app import APP_ID, __version__
from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import Recovery, StreamError
from app.core.streaming import close_codes
from app.core.streaming.transport import ca_bundle

log = logging.getLogger(__name__)

V2_EXPIRES_IN_S = 60        # v2 allows 60..360000; the token is redeemed at once
V3_EXPIRES_IN_S = 60        # v3 allows 1..600 (redemption window, not session length)
USER_AGENT = f"{APP_ID}/{__version__}"


def _where(url: str) -> str:
    """A URL safe to show: scheme, host and path only (broker URLs may carry secrets in the query)."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def _request(req: urllib.request.Request, what: str, timeout: float,
             hint: str = "Check the API key in Settings.") -> dict:
    if urlsplit(req.full_url).scheme not in ("http", "https"):
        raise SessionError(StreamError(None, f"{what}: only http:// and https:// URLs are supported.",
                                       Recovery.STOP))
    context = None
    if req.full_url.startswith("https:"):
        ca_file = ca_bundle()
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:
        detail = None
        try:
            payload = json.loads(exc.read(4096) or b"{}")
            if isinstance(payload, dict):
                detail = str(payload.get("error") or payload.get("message") or "") or None
        except (ValueError, OSError):
            pass
        raise SessionError(close_codes.from_http_status(exc.code, what, detail, hint)) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SessionError(StreamError(None, f"Could not reach {what} ({_plain_os_error(reason)}); "
                                             "retrying.", Recovery.RECONNECT)) from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
        raise SessionError(StreamError(None, f"{what} answered without a token. Check the URL.",
                                       Recovery.STOP))
    return data


def _plain_os_error(reason) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "host name not found"
    text = str(reason).strip()
    return text[:120] if text else type(reason).__name__


def mint_v2_token(base_url: str, api_key: Secret, *, expires_in: int = V2_EXPIRES_IN_S,
                  timeout: float = 10.0) -> str:
    """``POST {base}/v2/realtime/token`` with JSON ``{"expires_in": n}`` and a Content-Type."""
    if not 60 <= expires_in <= 360000:
        raise ValueError("v2 token expires_in must be 60-360000 seconds")
    url = base_url.rstrip("/") + "/v2/realtime/token"
    req = urllib.request.Request(
        url, data=json.dumps({"expires_in": expires_in}).encode(), method="POST",
        headers={"Authorization": api_key.reveal(), "Content-Type": "application/json",
                 "User-Agent": USER_AGENT})
    log.debug("minting a v2 token at %s", _where(url))
    return _request(req, "The AssemblyAI token service", timeout)["token"]


def mint_v3_token(base_url: str, api_key: Secret, *, expires_in: int = V3_EXPIRES_IN_S,
                  timeout: float = 10.0) -> str:
    """``GET {base}/v3/token?expires_in_seconds=n`` with the key in the Authorization header."""
    if not 1 <= expires_in <= 600:
        raise ValueError("v3 token expires_in_seconds must be 1-600")
    url = base_url.rstrip("/") + "/v3/token?" + urlencode({"expires_in_seconds": expires_in})
    req = urllib.request.Request(url, method="GET", headers={
        "Authorization": api_key.reveal(), "User-Agent": USER_AGENT})
    log.debug("minting a v3 token at %s", _where(url))
    return _request(req, "The AssemblyAI token service", timeout)["token"]


def fetch_broker_token(broker_url: str, *, timeout: float = 10.0) -> str:
    """An organisation's broker: GET returning ``{"token": ...}``; falls back to POST on 405."""
    what = f"The token broker at {_where(broker_url)}"
    hint = "Ask your administrator whether this computer may use the token broker."
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        return _request(urllib.request.Request(broker_url, method="GET", headers=headers),
                        what, timeout, hint)["token"]
    except SessionError as exc:
        if exc.error.code != 405:
            raise
    log.debug("token broker refused GET; trying POST")
    req = urllib.request.Request(broker_url, data=b"{}", method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    return _request(req, what, timeout, hint)["token"]
