"""What a recognition session needs to know, independent of where it came from (CLI or settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
