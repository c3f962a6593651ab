"""Build the speech session a configuration asks for: AssemblyAI v3 / v2, or the offline engine."""

from __future__ import annotations

from app.core.credentials import Secret
from app.core.engine import SpeechSession
from app.core.events import Listener
from app.core.session_config import SessionConfig
from app.core.streaming.auth import provider_for


def create_session(config: SessionConfig, listener: Listener, *, api_key: Secret | None,
                   token_url: str | None = None, **client_options) -> SpeechSession:
    """A new, not yet started session. ``client_options`` tune the AssemblyAI clients (timeouts)."""
    if config.engine == "local":
        from app.core.engines.local import LocalSession  # heavy: only when asked for
        return LocalSession(config, listener)
    auth = provider_for(config, api_key, token_url)
    if config.protocol == "v2":
        from app.core.streaming.v2 import V2Session
        client_options.pop("format_wait_s", None)
        return V2Session(config, listener, auth=auth, **client_options)
    from app.core.streaming.v3 import V3Session
    return V3Session(config, listener, auth=auth, **client_options)
