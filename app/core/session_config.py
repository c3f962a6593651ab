"""What a recognition session needs to know, independent of where it came from (CLI or settings)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from app.core import speech_models

from app.core import silence


PROTOCOLS = ("v3", "v2")
ENGINES = ("assemblyai", "local")
ENCODINGS = ("pcm_s16le", "pcm_mulaw")
REGIONS = ("us", "eu")
AUTH_MODES = ("key", "token", "broker")

# Frame-duration limits per protocol, in milliseconds (wire reference §1.7 and §3.6).
CHUNK_LIMITS_MS = {"v2": (100, 2000), "v3": (50, 1000)}
DEFAULT_CHUNK_MS = 100
DEFAULT_V3_MODEL = "universal-streaming-english"


@dataclass(frozen=True)
class SessionConfig:
    engine: str = "assemblyai"          # "assemblyai" | "local"
    protocol: str = "v3"
    region: str = "us"
    server_url: str | None = None       # http(s)://host:port overrides AssemblyAI's hosts
    auth_mode: str = "key"              # "key" | "token" | "broker"
    token_url: str | None = None        # organisation token broker (auth_mode == "broker")
    speech_model: str = DEFAULT_V3_MODEL
    encoding: str = "pcm_s16le"
    sample_rate: int = 16000
    chunk_ms: int = DEFAULT_CHUNK_MS
    vocabulary: tuple[str, ...] = field(default=())
    silence_ms: int = silence.DEFAULT_MS
    format_turns: bool = True
    allow_insecure: bool = False        # plain http/ws to a non-loopback host (the user opted in)
    # v3 Universal-Streaming options (wire reference §3.8); the defaults send nothing new.
    speaker_labels: bool = False
    max_speakers: int | None = None            # 1-10, a hard cap on distinct labels
    language_codes: tuple[str, ...] = field(default=())
    language_detection: bool = False
    prompt: str = ""                           # context for the Pro models, not instructions
    mode: str | None = None                    # min_latency | balanced | max_accuracy
    voice_focus: str | None = None             # near-field (headset) | far-field (room mic)
    filter_profanity: bool = False             # off: readers get the words everyone else hears
    inactivity_timeout_s: int | None = None    # 5-3600 s; KeepAlive keeps a silent source open
    session_heartbeat: bool = False            # Heartbeat messages: notice a server falling behind
    llm_gateway: str | None = None             # JSON {model, messages, max_tokens}

    @property
    def model_info(self) -> speech_models.SpeechModel:
        return speech_models.lookup(self.speech_model)

    def v3_options_in_use(self) -> list[str]:
        """Names of the v3-only options this configuration asks for."""
        used = []
        for name, on in (("speaker_labels", self.speaker_labels),
                         ("languages", bool(self.language_codes)),
                         ("language_detection", self.language_detection),
                         ("prompt", bool(self.prompt.strip())), ("mode", self.mode is not None),
                         ("voice_focus", self.voice_focus is not None),
                         ("filter_profanity", self.filter_profanity),
                         ("llm_gateway", self.llm_gateway is not None)):
            if on:
                used.append(name)
        return used

    def unsupported_options(self) -> dict[str, str]:
        """Option in use → why this engine/protocol/model does not have it."""
        reasons = speech_models.engine_reasons(self.engine, self.protocol, self.model_info)
        used = self.v3_options_in_use()
        out = {k: reasons[k] for k in used if k in reasons}
        if self.engine == "local" and set(self.language_codes) <= {"en"}:
            out.pop("languages", None)         # English is what the offline engine does
        if "languages" in out and self.engine != "local" and self.protocol == "v3":
            # English-only model: asking for English alone is fine.
            if set(c.split("-")[0] for c in self.language_codes) <= {"en"}:
                out.pop("languages")
        if self.protocol == "v3" and self.engine != "local" and self.language_codes:
            model = self.model_info
            other = [c for c in self.language_codes if not model.supports_language(c)]
            if other and "languages" not in out:
                out["languages"] = (f"{model.label} recognises {model.languages_text}, not "
                                    f"{', '.join(other)}.")
        return out

    def without_unsupported(self) -> tuple["SessionConfig", list[str]]:
        """Drop saved options the current engine/model lacks (the settings page shows them
        disabled with the reason); returns the notices to show."""
        out = self.unsupported_options()
        if not out:
            return self, []
        changes = {}
        for name in out:
            if name == "languages":
                changes["language_codes"] = ()
            elif name in ("mode", "voice_focus", "llm_gateway"):
                changes[name] = None
            elif name == "prompt":
                changes["prompt"] = ""
            elif name != "speech_model":
                changes[name] = False
                if name == "speaker_labels":
                    changes["max_speakers"] = None
        notes = [f"{name.replace('_', ' ')} is off for this run: {why}" for name, why in out.items()]
        return replace(self, **changes), notes

    def validate(self) -> None:
        """Raise ``ValueError`` with a message a person understands."""
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}.")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Unknown protocol {self.protocol!r}; choose v3 or v2.")
        if self.region not in REGIONS:
            raise ValueError(f"Unknown region {self.region!r}; choose us or eu.")
        if self.auth_mode not in AUTH_MODES:
            raise ValueError(f"Unknown auth mode {self.auth_mode!r}; choose key, token or broker.")
        if self.auth_mode == "broker" and not self.token_url:
            raise ValueError("Token-broker authentication needs a token URL.")
        from app.core.streaming.urls import check_url   # urls imports this module
        if self.server_url:
            check_url(self.server_url, "server URL", allow_insecure=self.allow_insecure)
        if self.auth_mode == "broker":
            check_url(self.token_url, "token-broker URL", allow_insecure=self.allow_insecure,
                      schemes=("http", "https"))
        if self.encoding not in ENCODINGS:
            raise ValueError(f"Unknown encoding {self.encoding!r}; choose pcm_s16le or pcm_mulaw.")
        if not 8000 <= self.sample_rate <= 48000:
            raise ValueError(f"Sample rate {self.sample_rate} Hz is outside 8000-48000 Hz.")
        lo, hi = CHUNK_LIMITS_MS[self.protocol]
        if not lo <= self.chunk_ms <= hi:
            raise ValueError(
                f"Chunk size {self.chunk_ms} ms is outside the {self.protocol} limits ({lo}-{hi} ms)."
            )
        silence.validate(self.silence_ms)
        self._validate_v3_options()

    def _validate_v3_options(self) -> None:
        if self.protocol == "v3" and self.engine != "local":
            speech_models.check_model_name(self.speech_model)
        if self.max_speakers is not None:
            lo, hi = speech_models.MAX_SPEAKERS_RANGE
            if isinstance(self.max_speakers, bool) or not lo <= self.max_speakers <= hi:
                raise ValueError(f"Max speakers must be {lo}-{hi}, not {self.max_speakers!r}.")
            if not self.speaker_labels:
                raise ValueError("Max speakers only applies with speaker labels on.")
        for code in self.language_codes:
            speech_models.check_language_code(code)
        if self.mode is not None and self.mode not in speech_models.MODES:
            raise ValueError(f"Unknown mode {self.mode!r}; choose {', '.join(speech_models.MODES)}.")
        if self.voice_focus is not None and self.voice_focus not in speech_models.VOICE_FOCUS:
            raise ValueError(f"Unknown voice focus {self.voice_focus!r}; choose near-field "
                             f"(headset) or far-field (room microphone).")
        if len(self.prompt) > 4000:
            raise ValueError(f"The prompt has {len(self.prompt)} characters; keep it under 4000 "
                             f"(a short description of the meeting: topic, names).")
        if self.inactivity_timeout_s is not None:
            lo, hi = speech_models.INACTIVITY_RANGE_S
            if isinstance(self.inactivity_timeout_s, bool) or not lo <= self.inactivity_timeout_s <= hi:
                raise ValueError(f"The inactivity timeout must be {lo}-{hi} s, "
                                 f"not {self.inactivity_timeout_s!r}.")
            if self.protocol == "v2" and self.engine != "local":
                raise ValueError("The inactivity timeout needs the v3 protocol.")
        if self.llm_gateway is not None:
            check_llm_gateway(self.llm_gateway)
        problems = self.unsupported_options()
        if problems:
            name, why = next(iter(problems.items()))
            raise ValueError(f"{name.replace('_', ' ').capitalize()}: {why}")


def check_llm_gateway(text: str) -> dict:
    """The ``llm_gateway`` JSON as the server wants it; ``ValueError`` in plain words if not."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("The LLM gateway configuration is not valid JSON.") from None
    if not isinstance(value, dict) or not isinstance(value.get("model"), str):
        raise ValueError('The LLM gateway configuration must be a JSON object with a "model".')
    messages = value.get("messages")
    if not (isinstance(messages, list) and messages and all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages)):
        raise ValueError('The LLM gateway configuration needs "messages": [{"role", "content"}].')
    tokens = value.get("max_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        raise ValueError('The LLM gateway configuration needs a positive whole "max_tokens".')
    return value
