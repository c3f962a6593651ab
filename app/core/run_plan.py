"""What a run uses: saved settings + command-line overrides → one validated ``RunPlan``.

Both fronts (the overlay and ``--headless``) decide here and nowhere else: which engine, which
audio, which protocol parameters, which key. The rules:

- A command-line value beats the saved setting for this run, until the user changes that
  setting in the app (``RunValues.forget``).
- A value given on the command line is checked strictly (``--chunk-ms 20`` is an error in both
  fronts). A *saved* chunk size outside the protocol's frame limits is clamped instead, so a
  protocol switch never leaves a saved value that stops captions.
- Vocabulary is parsed by ``app.core.vocabulary`` only (quoted terms keep their commas) and must
  fit the protocol's limits; the silence threshold is checked by ``app.core.silence``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from app.core import recognition_options, translation, vocabulary
from app.core.credentials import KeyringUnavailable, Secret
from app.core.session_config import CHUNK_LIMITS_MS, SessionConfig
from app.core.settings import PREF_BY_KEY, Settings

log = logging.getLogger(__name__)

#: Command-line flag (argparse dest) → the setting it overrides for one run.
OVERRIDE_KEYS: dict[str, str] = {
    "engine": "engine/engine", "protocol": "connection/protocol", "region": "connection/region",
    "server": "connection/server_url", "auth_mode": "connection/auth_mode",
    "token_url": "connection/token_url", "speech_model": "connection/speech_model",
    "encoding": "connection/encoding", "sample_rate": "connection/sample_rate",
    "chunk_ms": "connection/chunk_ms", "vocabulary": "recognition/vocabulary",
    "silence_ms": "recognition/silence_ms", "allow_insecure": "connection/allow_insecure",
    "translate_to": "translation/target", "translate_model": "translation/model",
    **recognition_options.FLAG_KEYS,
}
#: ``--source`` names a whole source spec (``file:PATH``, ``mic:NAME``…), not one setting.
SOURCE_OVERRIDE = "source"

NO_KEY_MESSAGE = ("No AssemblyAI API key is set. Add one in Settings → Connection, set "
                  "ASSEMBLYAI_API_KEY, or choose the offline engine.")


class PlanError(ValueError):
    """The run cannot start as configured; the message says why in plain words.

    ``auth`` tells the command line to exit with the authentication code rather than usage."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth


def overrides_from_args(args) -> dict[str, Any]:
    """The command-line values that were actually given, keyed by the setting they override.

    Nothing is refused here: ``plan_run`` checks every value when captions start, so a bad flag
    gives the same message in the overlay's status line as on the command line."""
    out: dict[str, Any] = {}
    for dest, key in OVERRIDE_KEYS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "vocabulary":
            value = tuple(vocabulary.parse_text(value))
        elif dest == "language":          # an empty list is refused when the run is planned
            value = tuple(dict.fromkeys(c.strip() for c in str(value).split(",") if c.strip()))
        out[key] = value
    source = getattr(args, SOURCE_OVERRIDE, None)
    if source is not None:
        out[SOURCE_OVERRIDE] = source
    return out


class RunValues:
    """The settings as this run sees them: command-line overrides first, then the saved values."""

    def __init__(self, settings: Settings, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.overrides = dict(overrides or {})

    def get(self, key: str) -> Any:
        if key in self.overrides:
            return self.overrides[key]
        return self.settings.get(key)

    def explicit(self, key: str) -> bool:
        return key in self.overrides

    def forget(self, keys) -> None:
        """The user changed these settings in the app: their newest choice beats the flag."""
        for key in keys:
            self.overrides.pop(key, None)
            if key.startswith("audio/"):
                self.overrides.pop(SOURCE_OVERRIDE, None)

    def source_specs(self) -> tuple[str, ...]:
        """``--source`` as given, else the saved source; each with its saved device."""
        spec = self.overrides.get(SOURCE_OVERRIDE)
        if spec is not None and str(spec).strip().casefold() != "both":
            return (str(spec),)
        return source_specs(self.get, both=spec is not None)


def source_specs(get: Callable[[str], Any], *, both: bool = False) -> tuple[str, ...]:
    """The ``--source`` spellings of saved (or pending) audio settings, one per audio source:
    ("mic:Headset",), ("system",) or, for both, the microphone and the system audio."""
    kind = "both" if both else get("audio/source")
    mic, system = get("audio/mic_device"), get("audio/system_device")
    mic_spec = f"mic:{mic}" if mic else "mic"
    system_spec = f"system:{system}" if system else "system"
    return {"mic": (mic_spec,), "system": (system_spec,)}.get(kind, (mic_spec, system_spec))


def requested_engine(get: Callable[[str], Any]) -> str | None:
    """``None`` for auto, else "assemblyai" or "local"."""
    engine = get("engine/engine")
    return None if engine in (None, "", "auto") else engine


def resolve_engine(requested: str | None, api_key_present: bool, token_url: str | None) -> str:
    """``auto``/None → "assemblyai" if a key or a broker URL is configured, else "local"."""
    if requested in (None, "", "auto"):
        return "assemblyai" if api_key_present or bool(token_url) else "local"
    if requested not in ("assemblyai", "local"):
        raise PlanError(f"Unknown engine {requested!r}; choose auto, assemblyai or local.")
    return requested


def broker_url(get: Callable[[str], Any]) -> str | None:
    """The token broker's URL when broker authentication is chosen, else ``None``."""
    if get("connection/auth_mode") != "broker":
        return None
    return (get("connection/token_url") or "").strip() or None


def session_config(get: Callable[[str], Any], engine: str,
                   explicit: Callable[[str], bool] = lambda key: False, *,
                   notes: list[str] | None = None) -> SessionConfig:
    """A validated ``SessionConfig`` from setting values (saved, pending or overridden).

    Saved v3 options the engine or model lacks are left out of the run (a line is added to
    ``notes`` for each); the same options given explicitly are errors. Raises ``PlanError``."""
    protocol = get("connection/protocol")
    chunk_ms = int(get("connection/chunk_ms"))
    lo, hi = CHUNK_LIMITS_MS.get(protocol, (chunk_ms, chunk_ms))
    if not explicit("connection/chunk_ms") and not lo <= chunk_ms <= hi:
        log.info("saved chunk size %d ms is outside the %s limits; using %d ms", chunk_ms,
                 protocol, min(max(chunk_ms, lo), hi))
        chunk_ms = min(max(chunk_ms, lo), hi)
    config = SessionConfig(
        engine=engine, protocol=protocol, region=get("connection/region"),
        server_url=(get("connection/server_url") or "").strip() or None,
        auth_mode=get("connection/auth_mode"),
        token_url=(get("connection/token_url") or "").strip() or None,
        speech_model=get("connection/speech_model") or PREF_BY_KEY["connection/speech_model"].default,
        encoding=get("connection/encoding"), sample_rate=int(get("connection/sample_rate")),
        chunk_ms=chunk_ms, vocabulary=tuple(vocabulary.clean_terms(get("recognition/vocabulary"))),
        silence_ms=get("recognition/silence_ms"),
        allow_insecure=bool(get("connection/allow_insecure")))
    _, gateway = translation_choice(get, explicit, engine, notes)
    if gateway is not None:
        chosen = config.speech_model
        if not translation.model_can_translate(chosen):
            config = replace(config, speech_model=translation.TRANSLATING_SPEECH_MODEL)
            if notes is not None:
                notes.append(f"Translation needs a Universal-3 Pro model; this run uses "
                             f"{translation.TRANSLATING_SPEECH_MODEL} instead of {chosen}.")
        config = replace(config, llm_gateway=gateway)
    try:
        pruned, left_out = recognition_options.apply(config, get, explicit)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    if notes is not None:
        notes.extend(left_out)
    try:
        pruned.validate()
        if engine == "assemblyai":
            from app.core.streaming import urls
            urls.http_base(pruned)              # server URL shape; v2 has no EU endpoint
            vocabulary.require_within_limits(pruned.vocabulary, protocol)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    return pruned


def translation_choice(get: Callable[[str], Any], explicit: Callable[[str], bool], engine: str,
                       notes: list[str] | None) -> tuple[str | None, str | None]:
    """(target language code, ``llm_gateway`` JSON), or (None, None) when this run does not
    translate. A flag this run cannot honour is a ``PlanError``; a saved choice it cannot honour
    is left out with a line in ``notes``, so captions still start."""
    raw = str(get("translation/target") or "").strip()
    asked = explicit("translation/target")
    if not raw:
        if asked:
            raise PlanError("--translate-to needs a language, e.g. Spanish or es.")
        if explicit("translation/model"):
            raise PlanError("--translate-model needs --translate-to LANG.")
        return None, None

    def off(why: str) -> tuple[None, None]:
        if asked or explicit("translation/model"):
            raise PlanError(why)
        if notes is not None:
            notes.append(f"Translation is off for this run: {why}")
        return None, None

    reason = translation.unavailable_reason(engine, get("connection/protocol"),
                                            get("connection/region"))
    if reason:
        return off(reason)
    model = str(get("connection/speech_model") or "").strip()
    if explicit("connection/speech_model") and not translation.model_can_translate(model):
        raise PlanError(f"Translation needs a Universal-3 Pro model (universal-3-6-pro or "
                        f"universal-3-5-pro); --speech-model {model[:64]} does not offer it.")
    try:
        target = translation.resolve_language(raw)
        gateway = translation.gateway_json(target, model=get("translation/model"),
                                           context=get("translation/context"))
    except ValueError as exc:
        return off(str(exc))
    return target, gateway


@dataclass(frozen=True)
class RunPlan:
    config: SessionConfig           # the engine is resolved
    source_specs: tuple[str, ...]   # one per audio source
    api_key: Secret | None          # None with broker auth and the offline engine
    token_url: str | None           # the broker's URL (broker authentication only)
    notes: tuple[str, ...] = ()     # saved options this engine or model lacks, left out
    translate_to: str | None = None  # the language code captions are translated into

    @property
    def source_spec(self) -> str:
        """One name for all of them (transcripts, the status line)."""
        return "both" if len(self.source_specs) > 1 else self.source_specs[0]


def load_key(values: RunValues, loader: Callable[[], Secret | None],
             session_key: Secret | None = None) -> tuple[Secret | None, str]:
    """(key or None, why there is none). A key typed for this run beats the keyring; a keyring
    that cannot be read leaves "auto" on the offline engine and is named if AssemblyAI is needed."""
    if session_key is not None:
        return session_key, ""
    if values.get("connection/auth_mode") == "broker":
        return None, ""             # the broker hands out tokens; no key on this machine
    if requested_engine(values.get) == "local":
        return None, ""             # the offline engine needs none: the keyring is not asked
    try:
        return loader(), ""
    except KeyringUnavailable as exc:
        # Said where it matters: in "No AssemblyAI API key…" when AssemblyAI was asked for.
        log.info("%s", exc)
        return None, str(exc)


def plan_run(values: RunValues, api_key: Secret | None, *, key_note: str = "",
             offline_available: Callable[[], tuple[bool, str]] | None = None) -> RunPlan:
    """Everything a run needs, checked before any device or connection is opened."""
    token_url = broker_url(values.get)
    engine = resolve_engine(requested_engine(values.get), api_key is not None, token_url)
    notes: list[str] = []
    config = session_config(values.get, engine, values.explicit, notes=notes)
    if engine == "local":
        if offline_available is None:
            from app.core.engines import offline_engine_available as offline_available
        ok, reason = offline_available()
        if not ok:
            raise PlanError(f"No AssemblyAI key is configured and the offline engine is not "
                            f"available ({reason}). Save an API key in Settings or set "
                            f"ASSEMBLYAI_API_KEY.")
    elif config.auth_mode != "broker" and api_key is None:
        note = f" ({key_note})" if key_note else ""
        raise PlanError(NO_KEY_MESSAGE + note, auth=True)
    target = None
    if config.llm_gateway is not None:
        target, _ = translation_choice(values.get, values.explicit, engine, None)
    return RunPlan(config, values.source_specs(), api_key if engine == "assemblyai" else None,
                   token_url, tuple(notes), translate_to=target)
