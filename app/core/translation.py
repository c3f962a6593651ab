"""Live translation through AssemblyAI's LLM Gateway: target languages, the prompt, the
``llm_gateway`` request and where a run can translate at all.

The user picks a language (by name or code) and optionally a line of context; the app writes the
prompt, so nobody has to know about the ``{{turn}}`` template variable. The request is sent once,
as a connection parameter; after each final the server answers with the translation of that turn.
"""

from __future__ import annotations

import json
import unicodedata

from app.core import speech_models

#: AssemblyAI's translation guide uses this model: fast and cheap per request.
DEFAULT_MODEL = "gemini-2.5-flash-lite"
#: The Pro model a run switches to when the chosen speech model has no LLM Gateway.
TRANSLATING_SPEECH_MODEL = "universal-3-6-pro"
#: One request covers one turn; a long turn (≈ 80 words) translates to well under this. Small
#: keeps a confused model from running on (every token is billed).
MAX_TOKENS = 400
CONTEXT_MAX_CHARS = 300
MODEL_NAME_MAX = 100
SHOW_CHOICES = ("both", "translation")

#: Common targets, code → English name (the list the settings page offers; any code works).
LANGUAGES: dict[str, str] = {
    "ar": "Arabic", "bn": "Bengali", "bg": "Bulgarian", "ca": "Catalan", "zh": "Chinese",
    "zh-Hans": "Chinese (Simplified)", "zh-Hant": "Chinese (Traditional)", "hr": "Croatian",
    "cs": "Czech", "da": "Danish", "nl": "Dutch", "en": "English", "et": "Estonian",
    "fi": "Finnish", "fr": "French", "de": "German", "el": "Greek", "he": "Hebrew",
    "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "lv": "Latvian", "lt": "Lithuanian", "ms": "Malay", "no": "Norwegian",
    "fa": "Persian", "pl": "Polish", "pt": "Portuguese", "pt-BR": "Portuguese (Brazil)",
    "pt-PT": "Portuguese (Portugal)", "ro": "Romanian", "ru": "Russian", "sr": "Serbian",
    "sk": "Slovak", "sl": "Slovenian", "es": "Spanish", "es-419": "Spanish (Latin America)",
    "sw": "Swahili", "sv": "Swedish", "tl": "Tagalog", "ta": "Tamil", "th": "Thai",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
}
_BY_NAME = {name.casefold(): code for code, name in LANGUAGES.items()}
_BY_CODE = {code.casefold(): code for code in LANGUAGES}


def resolve_language(text: str) -> str:
    """ "Spanish", "es", "pt-br" → the canonical code ("es", "pt-BR"); any well-formed code not
    in the list is kept as given. ``ValueError`` in plain words otherwise."""
    value = " ".join(str(text or "").split())
    if not value:
        raise ValueError("Choose a language to translate into, e.g. Spanish or es.")
    folded = value.casefold()
    if folded in _BY_NAME:
        return _BY_NAME[folded]
    if folded in _BY_CODE:
        return _BY_CODE[folded]
    try:
        speech_models.check_language_code(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a language this app knows; use a name from the "
                         f"list (e.g. Spanish) or a code such as es or pt-BR.") from None
    return value


def language_name(code: str) -> str:
    """What the prompt and the settings call ``code`` ("es" → "Spanish"); unknown codes as is."""
    if code in LANGUAGES:
        return LANGUAGES[code]
    base = LANGUAGES.get(code.split("-")[0])
    return f"{base} ({code})" if base else code


def clean_context(text: str) -> str:
    """One line, no control characters, bounded: it goes into every request."""
    line = " ".join("".join(c if unicodedata.category(c)[0] != "C" else " "
                            for c in str(text or "")).split())
    # The template variable belongs to the app's prompt only: a second one would repeat the turn.
    while "{{" in line or "}}" in line:
        line = line.replace("{{", "{").replace("}}", "}")
    if len(line) > CONTEXT_MAX_CHARS:
        raise ValueError(f"The translation context is {len(line)} characters; keep it to one "
                         f"line of at most {CONTEXT_MAX_CHARS} (a few names or terms).")
    return line


def check_model(name: str) -> str:
    value = str(name or "").strip()
    if not value:
        return DEFAULT_MODEL
    if len(value) > MODEL_NAME_MAX or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value[:40]!r} does not look like an LLM model name (no spaces, at "
                         f"most {MODEL_NAME_MAX} characters), e.g. {DEFAULT_MODEL}.")
    return value


def build_prompt(language: str, context: str = "") -> str:
    """The instruction sent with every turn; ``{{turn}}`` is where the server puts the turn."""
    name = language_name(language)
    lines = [f"Translate the following speech transcript into {name}.",
             "Translate faithfully and completely; do not summarise, explain or add anything.",
             "Keep names, numbers, units and technical terms exactly as spoken.",
             "Reply with the translation only: no preamble, no quotes, no notes."]
    if context:
        lines.append(f"Context (for the translator, do not translate it): {context}")
    lines.append("Transcript:")
    lines.append("{{turn}}")
    return "\n".join(lines)


def gateway_json(language: str, *, model: str = "", context: str = "") -> str:
    """The ``llm_gateway`` connection parameter for translating into ``language``."""
    request = {"model": check_model(model),
               "messages": [{"role": "user",
                             "content": build_prompt(resolve_language(language),
                                                     clean_context(context))}],
               "max_tokens": MAX_TOKENS}
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))


def unavailable_reason(engine: str, protocol: str, region: str) -> str | None:
    """Why a run with these cannot translate, in plain words; ``None`` when it can."""
    if engine == "local":
        return ("Live translation needs AssemblyAI: the offline engine has no translation "
                "(no offline translation model ships with this app).")
    if protocol == "v2":
        return ("Live translation needs the v3 Universal-Streaming protocol; the legacy v2 API "
                "does not have it.")
    if region == "eu":
        return "Live translation is not yet available in the EU region; choose the US region."
    return None


def model_can_translate(speech_model: str) -> bool:
    return speech_models.lookup(speech_model).llm_gateway


def unavailable_message(error: str | None) -> str:
    """The status notice for a turn the gateway did not translate (captions go on)."""
    why = " ".join(str(error or "").split())[:160]
    return ("Translation unavailable: " + (f"the LLM gateway said: {why}" if why else
            "the LLM gateway sent no translation") + "; captions continue.")
