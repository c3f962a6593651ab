"""Temporary tokens for the loopback server: minted over HTTP, single-use, expiring.

v2 tokens (POST /v2/realtime/token) and v3 tokens (GET /v3/token) are separate services on
AssemblyAI's side, so a token only opens a session of the protocol that minted it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass
class Token:
    value: str
    protocol: str                       # "v2" | "v3"
    expires_at: float                   # time.monotonic() deadline for redeeming it
    max_session_s: float | None = None  # v3: max_session_duration_seconds
    used: bool = False


class TokenStore:
    """Thread-safe: HTTP requests are answered on the server loop, tests inspect from their thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self.issued: list[Token] = []

    def issue(self, protocol: str, expires_in_s: float, max_session_s: float | None = None) -> Token:
        token = Token(secrets.token_hex(32), protocol, time.monotonic() + expires_in_s, max_session_s)
        with self._lock:
            self._tokens[token.value] = token
            self.issued.append(token)
        return token

    def redeem(self, value: str, protocol: str) -> tuple[Token | None, str]:
        """Use a token once. Returns (token, "") or (None, why it was refused)."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.protocol != protocol:
                return None, "unknown token"
            if token.used:
                return None, "token already used"
            if time.monotonic() > token.expires_at:
                return None, "token expired"
            token.used = True
            return token, ""

    def is_token(self, value: str) -> bool:
        with self._lock:
            return value in self._tokens

    def expire_all(self) -> None:
        """Make every outstanding token expired (tests of expiry without waiting a minute)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0
