"""Audio faults, each carrying a message a person can act on."""

from __future__ import annotations


class AudioSourceError(Exception):
    """Any failure to open or read an audio source."""


class DeviceNotFound(AudioSourceError):
    def __init__(self, wanted: str, available: list[str]) -> None:
        listing = ", ".join(available) if available else "none"
        super().__init__(f"Audio device {wanted!r} was not found. Available: {listing}.")
        self.wanted = wanted
        self.available = available


class DeviceLost(AudioSourceError):
    """The device vanished mid-session (unplugged, sink unloaded); may come back."""


class UnsupportedAudio(AudioSourceError):
    """A file whose format we cannot read."""
