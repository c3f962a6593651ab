"""The v3 speech models and what each accepts, so the settings page, the CLI and the session
all agree on which options a model has (wire reference §3.8, SDK 1.8.2 ``SpeechModel``).

A model name not in the catalogue ("other") is passed through unchanged with every option
allowed: a model released after this version must not need a new release to be used.
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("min_latency", "balanced", "max_accuracy")
VOICE_FOCUS = ("near-field", "far-field")
MAX_SPEAKERS_RANGE = (1, 10)
INACTIVITY_RANGE_S = (5, 3600)

_SIX = ("en", "es", "fr", "de", "it", "pt")


@dataclass(frozen=True)
class SpeechModel:
    name: str
    label: str
    languages: tuple[str, ...]          # ISO 639-1 codes; ("*",) = any (99+ languages)
    speaker_labels: bool = True
    language_detection: bool = False
    pro_options: bool = False           # prompt, mode, voice_focus
    llm_gateway: bool = False
    known: bool = True

    def supports_language(self, code: str) -> bool:
        return "*" in self.languages or code.split("-")[0].lower() in self.languages

    @property
    def languages_text(self) -> str:
        return "99+ languages" if "*" in self.languages else ", ".join(self.languages)


CATALOGUE: tuple[SpeechModel, ...] = (
    SpeechModel("universal-streaming-english", "Universal-Streaming English (fastest)", ("en",)),
    SpeechModel("universal-streaming-multilingual", "Universal-Streaming Multilingual", _SIX,
                language_detection=True),
    SpeechModel("u3-rt-pro", "Universal-3 Pro (u3-rt-pro, now served by 3.5 Pro)", _SIX,
                language_detection=True, pro_options=True, llm_gateway=True),
    SpeechModel("universal-3-5-pro", "Universal-3.5 Pro", _SIX, language_detection=True,
                pro_options=True, llm_gateway=True),
    SpeechModel("universal-3-6-pro", "Universal-3.6 Pro (most accurate)", _SIX,
                language_detection=True, pro_options=True, llm_gateway=True),
    SpeechModel("whisper-rt", "Whisper real-time (99+ languages)", ("*",), speaker_labels=False,
                language_detection=True),
)
BY_NAME = {m.name: m for m in CATALOGUE}
MODEL_NAMES = tuple(BY_NAME)


def lookup(name: str) -> SpeechModel:
    """The catalogue entry, or a permissive entry for a model this version does not know."""
    name = (name or "").strip()
    if name in BY_NAME:
        return BY_NAME[name]
    return SpeechModel(name, f"Other: {name}", ("*",), speaker_labels=True, language_detection=True,
                       pro_options=True, llm_gateway=True, known=False)


def check_model_name(name: str) -> None:
    if not name or not name.strip():
        raise ValueError("The speech model name is empty; choose one from the list or type its name.")
    if len(name) > 64 or any(c.isspace() or not c.isprintable() for c in name.strip()):
        raise ValueError(f"{name[:64]!r} does not look like a speech model name (no spaces, "
                         f"at most 64 characters).")


def check_language_code(code: str) -> None:
    parts = code.split("-")
    if not (2 <= len(parts[0]) <= 3 and parts[0].isascii() and parts[0].isalpha()
            and all(p.isascii() and p.isalnum() and 1 <= len(p) <= 8 for p in parts[1:])):
        raise ValueError(f"{code!r} is not a language code; use codes like en, es or pt-BR.")


def engine_reasons(engine: str, protocol: str, model: SpeechModel) -> dict[str, str]:
    """Option → why it is unavailable here (missing option = available). Shared by the settings
    page (to disable controls with the reason) and validation (to refuse with the reason)."""
    if engine == "local":
        why = "The offline engine has no speaker labels and recognises English only."
        return {k: why for k in ("speaker_labels", "languages", "language_detection", "prompt",
                                 "mode", "voice_focus", "filter_profanity", "llm_gateway",
                                 "speech_model")}
    if protocol == "v2":
        why = "Needs the v3 Universal-Streaming protocol (the legacy v2 API does not have it)."
        return {k: why for k in ("speaker_labels", "languages", "language_detection", "prompt",
                                 "mode", "voice_focus", "filter_profanity", "llm_gateway",
                                 "speech_model")}
    reasons = {}
    if not model.speaker_labels:
        reasons["speaker_labels"] = f"{model.label} does not label speakers."
    if not model.language_detection:
        reasons["language_detection"] = f"{model.label} recognises {model.languages_text} only."
    if model.languages == ("en",):
        reasons["languages"] = f"{model.label} recognises English only."
    if not model.pro_options:
        why = f"Only the Universal-3 Pro models accept this; {model.label} does not."
        for k in ("prompt", "mode", "voice_focus"):
            reasons[k] = why
    if not model.llm_gateway:
        reasons["llm_gateway"] = f"{model.label} does not offer per-turn LLM responses."
    return reasons
