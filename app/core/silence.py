"""The one "silence threshold" preference mapped onto each protocol's end-of-utterance parameters.

Users set one number: how long a pause (ms) ends a caption line. The protocols differ:

- v2 (legacy real-time): ``end_utterance_silence_threshold`` = the value, 0-20000 ms, default 700.
  Sent as ``{"end_utterance_silence_threshold": ms}``, allowed any number of times mid-session.
- v3 (Universal-Streaming): two parameters. ``min_turn_silence`` is the pause after which a turn
  ends when the model is confident; ``max_turn_silence`` is the pause after which it ends anyway.
  Mapping: ``min_turn_silence = ms`` and ``max_turn_silence = max(ms, 1280)``.
  1280 ms is v3's own default for ``max_turn_silence``, so short thresholds keep the server's
  "end anyway" fallback and long ones raise it so that it never undercuts the minimum.
  Same 0-20000 ms range. Sent live as ``{"type": "UpdateConfiguration", "min_turn_silence": ..,
  "max_turn_silence": ..}``.

This module is the one owner of the range and the mapping: settings, the command line, the
clients and the settings page all ask it.
"""

from __future__ import annotations

MIN_MS = 0
MAX_MS = 20000
DEFAULT_MS = 700
V3_MAX_TURN_FLOOR_MS = 1280


RANGE_TEXT = f"{MIN_MS}-{MAX_MS} ms"


def validate(ms) -> int:
    """``ms`` as an int, or ``ValueError`` in plain words when it is not a usable threshold."""
    if isinstance(ms, bool) or not isinstance(ms, int) or not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"The silence threshold must be a whole number of {RANGE_TEXT}, not {ms!r}.")
    return ms


def clamp(ms: int) -> int:
    return max(MIN_MS, min(MAX_MS, int(ms)))


def v2_params(ms: int) -> dict[str, int]:
    return {"end_utterance_silence_threshold": clamp(ms)}


def v3_params(ms: int) -> dict[str, int]:
    ms = clamp(ms)
    return {"min_turn_silence": ms, "max_turn_silence": max(ms, V3_MAX_TURN_FLOOR_MS)}


def turn_over_ms(protocol: str, ms: int) -> int:
    """The pause after which the server has ended any turn, confident or not."""
    if protocol == "v2":
        return clamp(ms)
    return v3_params(ms)["max_turn_silence"]


def params_for(protocol: str, ms: int) -> dict[str, int]:
    if protocol == "v2":
        return v2_params(ms)
    if protocol == "v3":
        return v3_params(ms)
    raise ValueError(f"Unknown protocol {protocol!r}; choose v3 or v2.")


def describe(protocol: str, ms: int) -> str:
    """Plain words for the settings page: what the server will be told."""
    params = params_for(protocol, ms)
    if protocol == "v2":
        return f"v2: end_utterance_silence_threshold = {params['end_utterance_silence_threshold']} ms"
    return (f"v3: min_turn_silence = {params['min_turn_silence']} ms, "
            f"max_turn_silence = {params['max_turn_silence']} ms")
