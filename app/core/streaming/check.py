""""Test connection": prove the credentials and the server work, without streaming captions.

Key and token modes first mint a temporary token (this checks the key over HTTP), broker mode
fetches one; then a short session is opened with that token and terminated at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import Recovery, StreamError
from app.core.session_config import SessionConfig
from app.core.streaming import auth as auth_mod
from app.core.streaming.deadline import Deadline
from app.core.streaming.transport import Transport, WebSocketTransport

log = logging.getLogger(__name__)


def check_connection(config: SessionConfig, api_key: Secret | None, timeout: float = 10.0,
                     *, transport_factory=WebSocketTransport) -> StreamError | None:
    """None when a session could be opened; otherwise the mapped error, in plain words."""
    if config.engine == "local":
        from app.core.engines import offline_engine_available
        ok, reason = offline_engine_available()
        return None if ok else StreamError(None, reason, Recovery.STOP)
    deadline = time.monotonic() + timeout
    limit = Deadline(timeout)      # one limit for the token and the socket together
    try:
        config.validate()
        provider = auth_mod.provider_for(config, api_key, config.token_url)
        if config.auth_mode in ("key", "token"):
            # Mint even in key mode: it checks the key without holding a streaming slot.
            token = auth_mod.TokenAuth(api_key).credentials(config, timeout, deadline=limit).token
        else:
            token = provider.credentials(config, timeout, deadline=limit).token
    except SessionError as exc:
        return exc.error
    except ValueError as exc:
        return StreamError(None, str(exc), Recovery.STOP)
    return _open_and_close(replace(config, auth_mode="token"), token,
                           max(1.0, deadline - time.monotonic()), transport_factory)


def _open_and_close(config: SessionConfig, token: str, timeout: float,
                    transport_factory: type[Transport] | object) -> StreamError | None:
    from app.core.streaming.v2 import V2Session
    from app.core.streaming.v3 import V3Session

    errors: list[StreamError] = []

    def listener(event):
        if isinstance(event, StreamError):
            errors.append(event)

    cls = V2Session if config.protocol == "v2" else V3Session
    session = cls(config, listener, auth=auth_mod.PresetTokenAuth(token),
                  transport_factory=transport_factory)
    try:
        session.start(timeout)
    except SessionError as exc:
        return exc.error
    session.stop(timeout=min(3.0, timeout))
    if errors:
        log.info("connection check: the session ended with %s", errors[0].message)
        return errors[0]
    return None


# Where the tested key came from, for the words of a refusal.
KEY_ORIGINS = ("typed", "session", "stored", "environment")


def refusal_message(error: StreamError, origin: str | None) -> str:
    """What the API key page says about a failed test: a refused key is named for where it came
    from and what to do on that page (the general message sends the user to Settings, where
    they already are); every other failure keeps its own words."""
    from app.core.streaming.close_codes import AUTH, category
    if category(error) != AUTH or origin not in KEY_ORIGINS:
        return error.message
    status = f" (HTTP {error.code})" if error.code else ""
    if origin == "typed":
        return (f"AssemblyAI refused this key{status}. Check that you copied the whole key "
                "from your AssemblyAI account; it has not been saved.")
    if origin == "session":
        return (f"AssemblyAI refused the key used for this session{status}. Paste the right "
                "key above.")
    if origin == "environment":
        return (f"AssemblyAI refused the key in ASSEMBLYAI_API_KEY{status}. Correct that "
                "variable and start the app again.")
    return (f"AssemblyAI refused the key stored in the keyring{status}. Paste the right key "
            "above and press \u201cSave to keyring\u201d.")
