"""The Recognition options of one run: flags and saved preferences → ``SessionConfig`` fields.

One rule for both fronts: an option given on the command line that the chosen model, protocol
or engine cannot honour is an error saying why; the same option merely *saved* (for another
model, say) is left out of the run with a notice, so captions still start.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from app.core import speech_models
from app.core.session_config import SessionConfig

#: argparse dest → the preference it overrides for one run.
FLAG_KEYS: dict[str, str] = {
    "speaker_labels": "recognition/speaker_labels", "max_speakers": "recognition/max_speakers",
    "language": "recognition/languages", "language_detection": "recognition/language_detection",
    "prompt": "recognition/prompt", "mode": "recognition/mode",
    "voice_focus": "recognition/voice_focus",
}
#: preference → the option name ``SessionConfig.unsupported_options`` reports.
OPTION_OF_KEY = {"recognition/speaker_labels": "speaker_labels",
                 "recognition/max_speakers": "speaker_labels",
                 "recognition/languages": "languages",
                 "recognition/language_detection": "language_detection",
                 "recognition/prompt": "prompt", "recognition/mode": "mode",
                 "recognition/voice_focus": "voice_focus"}


def recognition_fields(get: Callable[[str], Any], protocol: str, engine: str) -> dict[str, Any]:
    """The Recognition page's preferences as ``SessionConfig`` fields (``get(key)`` reads one)."""
    idle = int(get("recognition/inactivity_timeout_s"))
    labels = bool(get("recognition/speaker_labels"))
    return dict(
        speaker_labels=labels,
        max_speakers=(int(get("recognition/max_speakers")) or None) if labels else None,
        language_codes=tuple(get("recognition/languages")),
        language_detection=bool(get("recognition/language_detection")),
        prompt=get("recognition/prompt"),
        mode=get("recognition/mode") or None,
        voice_focus=get("recognition/voice_focus") or None,
        filter_profanity=bool(get("recognition/filter_profanity")),
        inactivity_timeout_s=max(5, idle) if idle and protocol == "v3" else None,
        session_heartbeat=bool(get("recognition/heartbeat")) and protocol == "v3"
        and engine != "local",
    )


def parse_languages(text: str) -> tuple[str, ...]:
    """ "en, es" → ("en", "es"); ``ValueError`` in plain words for an empty list."""
    codes = tuple(dict.fromkeys(c.strip() for c in str(text).split(",") if c.strip()))
    if not codes:
        raise ValueError("--language needs at least one language code, e.g. en or en,es.")
    return codes


def overrides_from_args(args) -> dict[str, Any]:
    """The recognition flags actually given, keyed by preference (``ValueError`` if unusable)."""
    out: dict[str, Any] = {}
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        out[key] = parse_languages(value) if dest == "language" else value
    return out


def apply(config: SessionConfig, get: Callable[[str], Any],
          explicit: Callable[[str], bool] = lambda key: False) -> tuple[SessionConfig, list[str]]:
    """``config`` with the run's recognition options. ``get(key)`` reads a preference (flags
    first), ``explicit(key)`` says whether a flag gave it. Returns (config, notices); raises
    ``ValueError`` for a flag the engine, protocol or model cannot honour."""
    if explicit("recognition/max_speakers") and not get("recognition/speaker_labels"):
        raise ValueError("--max-speakers needs --speaker-labels.")
    if explicit("recognition/languages") and not get("recognition/languages"):
        raise ValueError("--language needs at least one language code, e.g. en or en,es.")
    config = replace(config, **recognition_fields(get, config.protocol, config.engine))
    for code in config.language_codes:
        speech_models.check_language_code(code)      # "english" is a typo, not a language
    problems = config.unsupported_options()
    asked = {OPTION_OF_KEY[k] for k in OPTION_OF_KEY if explicit(k)}
    for name, why in problems.items():
        if name in asked:
            raise ValueError(f"{name.replace('_', ' ').capitalize()}: {why}")
    config, notes = config.without_unsupported()
    return config, notes
