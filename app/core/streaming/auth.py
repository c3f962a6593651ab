"""The three ways a session authenticates: API-key header, minted one-time token, token broker.

Each provider gives, per connection attempt, the headers and/or the token for the WebSocket.
With a token, the WebSocket carries only ``?token=`` and never the key.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import Recovery, StreamError
from app.core.session_config import SessionConfig
from app.core.streaming import tokens, urls
from app.core.streaming.deadline import Deadline

NO_KEY_MESSAGE = ("No AssemblyAI API key is configured. Save one in Settings, or set "
                  "ASSEMBLYAI_API_KEY for one run.")


@dataclass(frozen=True)
class Credentials:
    headers: dict = field(default_factory=dict, repr=False)   # may hold the key: never printed
    token: str | None = field(default=None, repr=False)


class AuthProvider(abc.ABC):
    mode = ""

    @abc.abstractmethod
    def credentials(self, config: SessionConfig, timeout: float,
                    deadline: Deadline | None = None) -> Credentials:
        """Fresh credentials for one connection, within ``deadline`` when given (Stop cancels
        it). Raises ``SessionError``."""


def _require_key(key: Secret | None) -> Secret:
    if not key:
        raise SessionError(StreamError(None, NO_KEY_MESSAGE, Recovery.STOP))
    return tokens.checked_key(key)


class KeyAuth(AuthProvider):
    """``Authorization: <key>`` (raw key, no "Bearer"), as both protocols document."""

    mode = "key"

    def __init__(self, api_key: Secret | None) -> None:
        self._key = api_key

    def credentials(self, config, timeout, deadline=None):
        return Credentials(headers={"Authorization": _require_key(self._key).reveal()})

    def __repr__(self) -> str:
        return "KeyAuth(***)"


class TokenAuth(AuthProvider):
    """Mint a single-use token with the key for every connection; the socket sees only the token."""

    mode = "token"

    def __init__(self, api_key: Secret | None) -> None:
        self._key = api_key

    def credentials(self, config, timeout, deadline=None):
        key = _require_key(self._key)
        base = urls.http_base(config)
        mint = tokens.mint_v2_token if config.protocol == "v2" else tokens.mint_v3_token
        return Credentials(token=mint(base, key, timeout=timeout, deadline=deadline))

    def __repr__(self) -> str:
        return "TokenAuth(***)"


class BrokerAuth(AuthProvider):
    """Fetch a token from the organisation's broker; this machine holds no key at all."""

    mode = "broker"

    def __init__(self, broker_url: str) -> None:
        if not broker_url:
            raise ValueError("Token-broker authentication needs a token URL.")
        self._url = broker_url

    def credentials(self, config, timeout, deadline=None):
        urls.check_url(self._url, "token-broker URL", allow_insecure=config.allow_insecure,
                       schemes=("http", "https"))
        return Credentials(token=tokens.fetch_broker_token(self._url, timeout=timeout,
                                                           deadline=deadline))

    def __repr__(self) -> str:
        return "BrokerAuth(***)"


class PresetTokenAuth(AuthProvider):
    """A token obtained elsewhere (the connection check mints first, then connects)."""

    mode = "token"

    def __init__(self, token: str) -> None:
        self._token = token

    def credentials(self, config, timeout, deadline=None):
        return Credentials(token=self._token)

    def __repr__(self) -> str:
        return "PresetTokenAuth(***)"


def provider_for(config: SessionConfig, api_key: Secret | None,
                 token_url: str | None = None) -> AuthProvider:
    if config.auth_mode == "broker":
        return BrokerAuth(token_url or config.token_url or "")
    if config.auth_mode == "token":
        return TokenAuth(api_key)
    return KeyAuth(api_key)
