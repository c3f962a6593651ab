"""The session interface shared by the AssemblyAI clients and the offline engine."""

from __future__ import annotations

import abc
from typing import Iterable

from app.core.events import Listener


class SpeechSession(abc.ABC):
    """One recognition session. Audio in: mono int16 little-endian PCM at the configured rate.

    Thread rules: ``send_audio`` is called from one producer thread (capture); the control
    methods may be called from any thread. Events reach the listener on the session's own
    thread, each exactly once, and ``SessionEnded`` or a ``StreamError`` is always the last.
    """

    def __init__(self, listener: Listener) -> None:
        self._listener = listener

    @abc.abstractmethod
    def start(self, timeout: float = 10.0) -> None:
        """Open the session; returns after it has begun. Raises ``SessionError`` on failure."""

    @abc.abstractmethod
    def send_audio(self, pcm16: bytes, *, may_block: bool = False) -> None:
        """Queue audio; the session re-chunks it to the protocol's frame limits and encoding.

        ``may_block``: the caller loses nothing by waiting (it reads a file, not a device), so
        the session may pace and send on the caller's thread instead of handing the audio over.
        """

    @abc.abstractmethod
    def force_end(self) -> None:
        """End the current utterance now, producing a final."""

    @abc.abstractmethod
    def set_silence_threshold(self, ms: int) -> None:
        """Change the end-of-utterance silence live (v2 message / v3 UpdateConfiguration)."""

    @abc.abstractmethod
    def set_vocabulary(self, terms: Iterable[str]) -> None:
        """Change the boosted vocabulary (live where the protocol allows, else next session)."""

    def set_languages(self, codes: Iterable[str]) -> None:
        """Change the expected languages live (v3 ``language_codes``). ``ValueError`` in plain
        words where the engine cannot."""
        raise ValueError("This speech engine cannot change languages during a session.")

    @abc.abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Flush audio, ask for the remaining finals, wait (bounded) for the end, close. Idempotent."""


class SessionError(Exception):
    """A session could not start or broke; carries the mapped ``StreamError``."""

    def __init__(self, error) -> None:  # error: app.core.events.StreamError
        super().__init__(error.message)
        self.error = error
