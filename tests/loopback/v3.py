"""v3 Universal-Streaming protocol (/v3/ws): Begin, Turn, Termination, Error + close code =
error_code; UpdateConfiguration, ForceEndpoint, Terminate, KeepAlive (wire reference §3).

Also the newer messages (§3.8): speaker labels and SpeakerRevision from the script, language
detection, SpeechStarted (Pro models), Heartbeat (``session_heartbeat``), Silence
(``acknowledge_silence``), LLMGatewayResponse (``llm_gateway``), Begin.configuration. KeepAlive
counts as activity for ``inactivity_timeout``.
"""

from __future__ import annotations

import json
import math
import time

from .session import BaseSession, ProtocolError, parse_bool
from .transcripts import spread_words, unformat

KEYTERMS_MAX = 100
KEYTERM_MAX_CHARS = 50
SPEECH_MODELS = {"universal-streaming-english", "universal-streaming-multilingual", "u3-rt-pro", "u3-rt-pro-beta-1",
                 "whisper-rt", "universal-3-5-pro", "universal-3-6", "universal-3-6-pro", "u3-pro"}
ENCODINGS = {"pcm_s16le", "pcm_mulaw"}
KNOWN_PARAMS = {"sample_rate", "encoding", "speech_model", "format_turns", "keyterms_prompt",
                "end_of_turn_confidence_threshold", "min_turn_silence", "max_turn_silence",
                "min_end_of_turn_silence_when_confident", "vad_threshold", "inactivity_timeout",
                "language_detection", "speaker_labels", "max_speakers", "prompt", "filter_profanity",
                "llm_gateway", "token",
                # Newer parameters SDK 1.8.2 knows; accepted and ignored by the loopback server.
                "acknowledge_silence", "agent_context", "interruption_delay", "language_codes",
                "session_heartbeat", "turn_left_pad_ms", "continuous_partials", "customer_support_audio_capture",
                "domain", "include_partial_turns", "language_code", "mode", "noise_suppression_model",
                "noise_suppression_threshold", "redact_pii", "redact_pii_policies", "redact_pii_sub",
                "speaker_labels_revision_interval_ms", "voice_focus", "voice_focus_threshold",
                "webhook_auth_header_name", "webhook_auth_header_value", "webhook_url"}
UPDATABLE = {"end_of_turn_confidence_threshold", "min_turn_silence", "max_turn_silence", "vad_threshold",
             "format_turns", "keyterms_prompt", "prompt", "filter_profanity",
             "min_end_of_turn_silence_when_confident", "acknowledge_silence", "agent_context",
             "interruption_delay", "language_codes", "session_heartbeat", "turn_left_pad_ms"}
PRO_MODELS = {"u3-rt-pro", "u3-rt-pro-beta-1", "u3-pro", "universal-3-5-pro", "universal-3-6",
              "universal-3-6-pro"}
REDIRECTS = {"u3-rt-pro": "universal-3-5-pro", "u3-pro": "universal-3-5-pro"}
SPEAKERS = "ABCDEFGHIJ"
API_VERSION = "2026-11-01"
DEFAULT_MIN_TURN_SILENCE = 400
DEFAULT_MAX_TURN_SILENCE = 1280


def _bad(message: str) -> ProtocolError:
    return ProtocolError(3006, f"Invalid Message: {message}", message)


class V3Session(BaseSession):
    protocol = "v3"
    frame_limits_ms = (50.0, 1000.0)
    default_silence_ms = DEFAULT_MIN_TURN_SILENCE
    auth_fail = (1008, "Unauthorized Connection: Invalid API key or token")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.format_turns = False
        self.min_turn_silence = DEFAULT_MIN_TURN_SILENCE
        self.max_turn_silence = DEFAULT_MAX_TURN_SILENCE
        self.turn_order = 0
        self.speech_model = "universal-streaming-english"
        self.speaker_labels = False
        self.max_speakers: int | None = None
        self.language_detection = False
        self.language_codes: list[str] = []
        self.heartbeat = False
        self.acknowledge_silence = False
        self.mode: str | None = None
        self.llm_gateway: dict | None = None
        self.later: list[tuple[float, dict]] = []      # (delay ms, message) sent after the final
        self.turn_labels: dict[int, str] = {}          # turn_order → label sent
        self.heartbeat_at_ms = 1000.0
        self.silence_from_ms: float | None = 0.0       # start of the silence being acknowledged

    def authenticate(self) -> bool:
        # API key or temporary token, in the Authorization header (SDK 1.8.2 sends tokens there)
        # or as ?token=.
        server, record = self.server, self.record
        header = self.headers.get("Authorization")
        token = self.query.get("token")
        if header and header in server.api_keys:
            record.auth = "key"
            return True
        why = "missing Authorization header" if not (header or token) else "invalid API key"
        for candidate in (token, header):
            if candidate and server.tokens.is_token(candidate):
                got, why = server.tokens.redeem(candidate, "v3")
                if got is not None:
                    record.auth = "token"
                    if got.max_session_s is not None:
                        self.max_session_s = min(filter(None, (self.max_session_s, got.max_session_s)))
                    return True
        record.auth_error = why
        return False

    # ---- parameters (query and UpdateConfiguration share the checks) -----------------------------
    def _set(self, name: str, value, *, from_query: bool) -> None:
        record = self.record
        if name in ("format_turns", "filter_profanity", "language_detection", "speaker_labels"):
            if from_query:
                value = parse_bool(name, value, record)
            elif type(value) is not bool:
                raise _bad(f"{name} must be a boolean, got {value!r}")
            if name == "format_turns":
                self.format_turns = value
            elif name == "speaker_labels":
                self.speaker_labels = value
            elif name == "language_detection":
                self.language_detection = value
        elif name in ("session_heartbeat", "acknowledge_silence"):
            if from_query:
                value = parse_bool(name, value, record)
            elif type(value) is not bool:
                raise _bad(f"{name} must be a boolean, got {value!r}")
            if name == "session_heartbeat":
                self.heartbeat = value
            else:
                self.acknowledge_silence = value
        elif name in ("language_codes",):
            if from_query:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _bad(f"language_codes is not JSON: {str(value)[:60]!r}") from None
            if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
                raise _bad("language_codes must be a non-empty list of language codes")
            self.language_codes = list(value)
        elif name == "mode":
            if value not in ("min_latency", "balanced", "max_accuracy"):
                raise _bad(f"unknown mode {value!r}")
            self.mode = value
        elif name in ("voice_focus", "noise_suppression_model"):
            if value not in ("near-field", "far-field"):
                raise _bad(f"unknown {name} {value!r}")
        elif name == "llm_gateway":
            self.llm_gateway = self._gateway(value)
        elif name == "keyterms_prompt":
            if from_query:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _bad(f"keyterms_prompt is not JSON: {str(value)[:60]!r}") from None
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise _bad("keyterms_prompt must be a list of strings")
            if len(value) > KEYTERMS_MAX:
                raise _bad(f"keyterms_prompt has {len(value)} terms (max {KEYTERMS_MAX})")
            long = [t for t in value if len(t) > KEYTERM_MAX_CHARS]
            if long:
                raise _bad(f"keyterm longer than {KEYTERM_MAX_CHARS} characters: {long[0][:60]!r}")
            record.vocabulary = list(value)
        elif name in ("min_turn_silence", "max_turn_silence", "min_end_of_turn_silence_when_confident",
                      "inactivity_timeout", "max_speakers"):
            number = self._number(name, value, from_query, integer=True)
            if number < 0:
                raise _bad(f"{name} must not be negative")
            if name == "inactivity_timeout":
                if not 5 <= number <= 3600:
                    raise _bad(f"inactivity_timeout={number} (allowed 5-3600 s)")
                self.idle_timeout_s = float(number)
            elif name == "max_speakers":
                if not 1 <= number <= 10:
                    raise _bad(f"max_speakers={number} (allowed 1-10)")
                self.max_speakers = number
            elif name == "max_turn_silence":
                self.max_turn_silence = number
            elif name != "max_speakers":
                self.min_turn_silence = number
                if self.endpointer is not None:
                    self.endpointer.silence_ms = number
        elif name in ("end_of_turn_confidence_threshold", "vad_threshold"):
            number = self._number(name, value, from_query, integer=False)
            if not 0.0 <= number <= 1.0:
                raise _bad(f"{name}={number} (allowed 0-1)")
        elif name == "speech_model":
            if value not in SPEECH_MODELS:
                raise _bad(f"unknown speech_model {value!r}")
            self.speech_model = value
        # prompt: accepted as given.

    @staticmethod
    def _gateway(value) -> dict:
        try:
            config = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise _bad("llm_gateway is not JSON") from None
        ok = (isinstance(config, dict) and isinstance(config.get("model"), str)
              and isinstance(config.get("max_tokens"), int)
              and isinstance(config.get("messages"), list) and config["messages"]
              and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                      and isinstance(m.get("content"), str) for m in config["messages"]))
        if not ok:
            raise _bad("llm_gateway must be {model, messages: [{role, content}], max_tokens}")
        if not any("{{turn}}" in m["content"] for m in config["messages"]):
            raise _bad("llm_gateway prompt must contain the {{turn}} template variable")
        return config

    @staticmethod
    def _number(name: str, value, from_query: bool, *, integer: bool):
        if from_query:
            try:
                value = int(value) if integer else float(value)
            except (TypeError, ValueError):
                raise _bad(f"{name}={value!r} is not a number") from None
        if type(value) is bool or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            raise _bad(f"{name}={value!r} is not a number")
        if integer and isinstance(value, float):
            if not value.is_integer():
                raise _bad(f"{name}={value!r} must be a whole number of milliseconds/seconds")
            value = int(value)
        return value

    def parse_params(self) -> None:
        q, record = self.query, self.record
        for name in q:
            if name not in KNOWN_PARAMS:
                record.violations.append(f"unknown v3 query parameter {name!r}")
        self.encoding = q.get("encoding", "pcm_s16le")
        if self.encoding not in ENCODINGS:
            raise _bad(f"encoding {self.encoding!r} is not supported by the loopback server")
        raw_rate = q.get("sample_rate")
        try:
            rate = int(raw_rate)
        except (TypeError, ValueError):
            rate = 0
        if rate <= 0:
            raise ProtocolError(3006, "Invalid Message: sample_rate must be a positive integer",
                                f"sample_rate={raw_rate!r} (must be a positive integer)")
        self.sample_rate = rate
        for name, value in q.items():
            if name in KNOWN_PARAMS and name not in ("sample_rate", "encoding", "token"):
                self._set(name, value, from_query=True)

    def apply_initial_silence(self) -> None:
        self.endpointer.silence_ms = self.min_turn_silence

    # ---- messages ------------------------------------------------------------------------------
    def begin_message(self) -> dict:
        expires = int(time.time() + (self.max_session_s or 3 * 3600))
        model = REDIRECTS.get(self.speech_model, self.speech_model)
        return {"type": "Begin", "id": self.session_id, "expires_at": expires,
                "configuration": {"model": model, "mode": self.mode or "balanced",
                                  "api_version": API_VERSION}}

    def error_message(self, code: int, message: str) -> dict | None:
        if code in (1000, 1001):
            return None
        return {"type": "Error", "error_code": code, "error": message}

    @staticmethod
    def _words(words: list[str], start_ms: int, end_ms: int, final_count: int) -> list[dict]:
        return [{"start": s, "end": e, "text": w, "confidence": 0.93, "word_is_final": i < final_count}
                for i, (w, s, e) in enumerate(spread_words(words, start_ms, end_ms))]

    def _turn(self, transcript: str, words: list[dict], *, end_of_turn: bool, formatted: bool,
              confidence: float) -> dict:
        return {"type": "Turn", "turn_order": self.turn_order, "turn_is_formatted": formatted,
                "end_of_turn": end_of_turn, "transcript": transcript, "end_of_turn_confidence": confidence,
                "words": words, "utterance": transcript if end_of_turn else ""}

    def partial_messages(self, words: list[str], start_ms: int, end_ms: int) -> list[dict]:
        # `transcript` holds the finalised words; the newest word is still open (word_is_final false).
        final_count = max(0, len(words) - 1)
        return [self._annotate(self._turn(" ".join(words[:final_count]), self._words(words, start_ms, end_ms, final_count),
                                          end_of_turn=False, formatted=False, confidence=0.05), self.utt_meta)]

    def _label(self, meta: dict) -> str:
        label = str(meta.get("speaker", "A"))
        if label != "UNKNOWN" and self.max_speakers and label in SPEAKERS:
            label = SPEAKERS[SPEAKERS.index(label) % self.max_speakers]   # a hard cap: voices merge
        return label

    def _annotate(self, turn: dict, meta: dict) -> dict:
        if self.speaker_labels:
            label = self._label(meta)
            turn["speaker_label"] = label
            for w in turn["words"]:
                w["speaker"] = label
        if self.language_detection:
            turn["language_code"] = str(meta.get("language", "en"))
            turn["language_confidence"] = 0.94
        return turn

    def final_messages(self, text: str, start_ms: int, end_ms: int) -> tuple[list[dict], str]:
        meta = self.final_meta
        plain = unformat(text).split()
        messages = [self._annotate(self._turn(" ".join(plain), self._words(plain, start_ms, end_ms, len(plain)),
                                              end_of_turn=True, formatted=False, confidence=0.91), meta)]
        recorded = " ".join(plain)
        if self.format_turns:
            shaped = text.split()
            messages.append(self._annotate(self._turn(text, self._words(shaped, start_ms, end_ms, len(shaped)),
                                                      end_of_turn=True, formatted=True, confidence=0.91), meta))
            recorded = text
        if self.speaker_labels:
            self.turn_labels[self.turn_order] = messages[-1]["speaker_label"]
            revisions = []
            for back, label in meta.get("revise", ()):
                order = self.turn_order - int(back)
                if order in self.turn_labels and self.turn_labels[order] != label:
                    self.turn_labels[order] = label
                    revisions.append({"turn_order": order, "speaker_label": label, "words": []})
                elif order not in self.turn_labels:
                    self.record.skipped_revisions.append((order, label))
            if revisions:
                messages.append({"type": "SpeakerRevision", "revisions": revisions})
        if self.llm_gateway is not None:
            answer = {"type": "LLMGatewayResponse", "turn_order": self.turn_order,
                      "transcript": recorded, "data": self._completion(recorded, meta)}
            delay = float(meta.get("translation_delay_ms", 0) or 0)
            if delay > 0:
                self.later.append((delay, answer))      # produced in the background
            else:
                messages.append(answer)
        self.turn_order += 1
        return messages, recorded

    def _completion(self, recorded: str, meta: dict) -> dict:
        data = {"id": f"chatcmpl-{self.session_id[:8]}-{self.turn_order}",
                "object": "chat.completion", "model": self.llm_gateway["model"]}
        error = meta.get("translation_error")
        if error == "no_choices":
            return {**data, "choices": []}
        if error:
            return {"error": {"message": str(error), "type": "invalid_request_error",
                              "code": 400}}
        content = meta.get("translation") or f"[{self.llm_gateway['model']}] {recorded}"
        return {**data, "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}]}

    def utterance_started_messages(self) -> list[dict]:
        self.silence_from_ms = None
        if self.speech_model in PRO_MODELS:
            return [{"type": "SpeechStarted", "timestamp": int(self.endpointer.utterance_start_ms),
                     "confidence": 0.87}]
        return []

    def on_audio_hook(self, pcm) -> list[dict]:
        out = []
        position = self.endpointer.position_ms
        if self.heartbeat and position >= self.heartbeat_at_ms:
            self.heartbeat_at_ms = position + 1000.0
            elapsed = max(1e-3, time.monotonic() - self.begun_at)
            out.append({"type": "Heartbeat", "total_audio_received_ms": int(position),
                        "total_duration_ms": int(elapsed * 1000),
                        "realtime_factor": float(self.server.realtime_factor),
                        "max_speech_probability": 0.9 if self.endpointer.in_utterance else 0.05})
        if self.acknowledge_silence:
            if self.endpointer.in_utterance:
                self.silence_from_ms = None
            elif self.silence_from_ms is None:
                self.silence_from_ms = position
            elif position - self.silence_from_ms >= 1000.0:
                out.append({"type": "Silence", "start_ms": int(self.silence_from_ms), "end_ms": int(position)})
                self.silence_from_ms = position
        return out

    def termination_messages(self) -> list[dict]:
        return [{"type": "Termination",
                 "audio_duration_seconds": int(round(self.audio_samples / self.sample_rate)),
                 "session_duration_seconds": int(round(time.monotonic() - self.begun_at))}]

    def unknown_message(self) -> dict:
        return {"type": "LoopbackNovelty", "detail": "a message type this client has never seen"}

    def frame_error(self, ms: float) -> ProtocolError:
        text = f"Input duration violation: {ms:.0f} ms. Expected between 50 and 1000 ms"
        return ProtocolError(3007, text, f"v3 audio frame of {ms:.1f} ms (allowed 50-1000 ms)")

    def rate_error(self, audio_s: float, elapsed_s: float) -> ProtocolError:
        text = f"Audio Transmission Rate Exceeded: Received {audio_s:.1f} sec. audio in {elapsed_s:.1f} sec"
        return ProtocolError(3007, text, f"audio faster than real time: {audio_s:.2f} s of audio in {elapsed_s:.2f} s")

    def idle_error(self) -> None:
        return None   # inactivity_timeout ends the session normally (Termination, 1000)

    def expired_error(self) -> ProtocolError:
        return ProtocolError(3008, "Session Expired: Maximum session duration exceeded", None)

    # ---- client messages -------------------------------------------------------------------------
    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self.record.control.append({"_raw": text, "_t": time.monotonic()})
            raise ProtocolError(3006, f"Invalid JSON: {text[:60]}", f"invalid JSON text frame: {text[:80]!r}") from None
        entry = dict(message) if isinstance(message, dict) else {"_value": message}
        entry["_t"] = time.monotonic()
        entry["_audio_ms"] = self.endpointer.position_ms
        self.record.control.append(entry)
        if not isinstance(message, dict) or "type" not in message:
            raise _bad(f"message has no type: {text[:60]}")
        kind = message["type"]
        if kind == "UpdateConfiguration":
            fields = {k: v for k, v in message.items() if k != "type"}
            unknown = set(fields) - UPDATABLE
            if unknown:
                raise _bad(f"UpdateConfiguration cannot change {sorted(unknown)}")
            for name, value in fields.items():
                if value is not None:
                    self._set(name, value, from_query=False)
        elif kind == "ForceEndpoint":
            await self.force_end()
        elif kind == "Terminate":
            await self.terminate()
        elif kind == "KeepAlive":
            self.last_audio_at = time.monotonic()    # keeps inactivity_timeout from firing
        else:
            raise ProtocolError(3006, f"Invalid Message Type: {str(kind)[:60]}", f"unknown v3 message type {kind!r}")
