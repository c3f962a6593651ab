"""Zoom's ``lang`` for one caption: the language detected for it, in Zoom's language-COUNTRY
form, else the configured caption language.

Speech recognition detects a language (``es``), Zoom wants language and country (``es-ES``).
A detected language that is the configured one's keeps the configured country (``en`` with
``en-GB`` configured stays ``en-GB``); others get the country most meetings in that language
use. A code this table does not know is never guessed: the configured language is sent.
"""

from __future__ import annotations

import re

# Zoom spells Japanese "jp-JP" in its caption API, not "ja-JP".
ZOOM_LANGUAGE = {
    "ar": "ar-SA", "bg": "bg-BG", "ca": "ca-ES", "cs": "cs-CZ", "da": "da-DK", "de": "de-DE",
    "el": "el-GR", "en": "en-US", "es": "es-ES", "et": "et-EE", "fa": "fa-IR", "fi": "fi-FI",
    "fr": "fr-FR", "he": "he-IL", "hi": "hi-IN", "hr": "hr-HR", "hu": "hu-HU", "id": "id-ID",
    "it": "it-IT", "ja": "jp-JP", "ko": "ko-KR", "lt": "lt-LT", "lv": "lv-LV", "ms": "ms-MY",
    "nl": "nl-NL", "no": "no-NO", "pl": "pl-PL", "pt": "pt-PT", "ro": "ro-RO", "ru": "ru-RU",
    "sk": "sk-SK", "sl": "sl-SI", "sr": "sr-RS", "sv": "sv-SE", "ta": "ta-IN", "te": "te-IN",
    "th": "th-TH", "tl": "tl-PH", "tr": "tr-TR", "uk": "uk-UA", "vi": "vi-VN", "zh": "zh-CN",
}

_DETECTED = re.compile(r"^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?$")


def _language_of(zoom_code: str) -> str:
    code = zoom_code.split("-", 1)[0].lower()
    return "ja" if code == "jp" else code


def zoom_lang(detected: object, configured: str) -> str:
    """``lang`` for a caption whose detected language is ``detected`` (None: not detected)."""
    match = _DETECTED.match(detected.strip()) if isinstance(detected, str) else None
    if match is None:
        return configured
    language = match.group(1).lower()
    if match.group(2):                                  # "pt-BR": the speaker's own country
        return ("jp" if language == "ja" else language) + "-" + match.group(2).upper()
    if language == _language_of(configured):
        return configured
    return ZOOM_LANGUAGE.get(language, configured)
