"""v2 real-time protocol (/v2/realtime/ws): SessionBegins, PartialTranscript, FinalTranscript,
SessionInformation, SessionTerminated, {"error"} + 4xxx close codes (wire reference §1)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timedelta, timezone

from .session import BaseSession, ProtocolError, parse_bool
from .transcripts import spread_words, unformat

V2_PARAMS = {"sample_rate", "encoding", "word_boost", "token", "disable_partial_transcripts",
             "enable_extra_session_information"}
WORD_BOOST_MAX_CHARS = 2500
THRESHOLD_RANGE = (0, 20000)

MSG = {
    4000: "Sample rate must be a positive integer",
    4001: "Not Authorized",
    4008: "Session Expired",
    4029: "Client sent audio too fast",
    4031: "Session idle for too long",
    4032: "Audio duration is too short",
    4033: "Audio duration is too long",
    4100: "Endpoint received invalid JSON",
    4101: "Endpoint received a message with an invalid schema",
    4104: "Could not parse word boost parameter",
}


def naive_iso(ts: float | None = None) -> str:
    """The v2 timestamp format: naive ISO-8601 (UTC) with microseconds, no zone."""
    moment = datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


class V2Session(BaseSession):
    protocol = "v2"
    frame_limits_ms = (100.0, 2000.0)
    default_silence_ms = 700
    auth_fail = (4001, MSG[4001])

    def authenticate(self) -> bool:
        server, record = self.server, self.record
        token = self.query.get("token")
        header = self.headers.get("Authorization")
        if token:
            ok, why = server.tokens.redeem(token, "v2")
            if ok is not None:
                record.auth = "token"
                return True
            record.auth_error = why
        if header and header in server.api_keys:
            record.auth = "key"
            return True
        if not token:
            record.auth_error = "missing Authorization header" if not header else "invalid API key"
        return False

    def parse_params(self) -> None:
        q, record = self.query, self.record
        for name in q:
            if name not in V2_PARAMS:
                record.violations.append(f"unknown v2 query parameter {name!r}")
        raw_rate = q.get("sample_rate")
        try:
            rate = int(raw_rate)
        except (TypeError, ValueError):
            rate = 0
        if rate <= 0:
            raise ProtocolError(4000, MSG[4000], f"sample_rate={raw_rate!r} (must be a positive integer)")
        self.sample_rate = rate
        self.encoding = q.get("encoding", "pcm_s16le")
        if self.encoding not in ("pcm_s16le", "pcm_mulaw"):
            raise ProtocolError(4101, MSG[4101], f"unsupported encoding {self.encoding!r}")
        if "word_boost" in q:
            try:
                boost = json.loads(q["word_boost"])
            except ValueError:
                boost = None
            if not isinstance(boost, list) or not all(isinstance(w, str) for w in boost):
                raise ProtocolError(4104, MSG[4104], f"word_boost is not a JSON list of strings: {q['word_boost'][:80]!r}")
            chars = sum(len(w) for w in boost)
            if chars > WORD_BOOST_MAX_CHARS:
                raise ProtocolError(4104, MSG[4104],
                                    f"word_boost has {chars} characters of vocabulary (max {WORD_BOOST_MAX_CHARS})")
            record.vocabulary = boost
        if "disable_partial_transcripts" in q:
            self.partials_enabled = not parse_bool("disable_partial_transcripts", q["disable_partial_transcripts"], record)
        self.extra_info = False
        if "enable_extra_session_information" in q:
            self.extra_info = parse_bool("enable_extra_session_information",
                                         q["enable_extra_session_information"], record)
        self.idle_timeout_s = self.server.idle_timeout_s

    # ---- messages ----------------------------------------------------------------------------
    def begin_message(self) -> dict:
        expires = time.time() + (self.max_session_s or 3 * 3600)
        return {"message_type": "SessionBegins", "session_id": self.session_id, "expires_at": naive_iso(expires)}

    def error_message(self, code: int, message: str) -> dict | None:
        return {"error": message} if code >= 4000 else None

    @staticmethod
    def _words(words: list[str], start_ms: int, end_ms: int) -> list[dict]:
        return [{"start": s, "end": e, "confidence": 0.93, "text": w} for w, s, e in spread_words(words, start_ms, end_ms)]

    def partial_messages(self, words: list[str], start_ms: int, end_ms: int) -> list[dict]:
        return [{"message_type": "PartialTranscript", "created": naive_iso(), "audio_start": start_ms,
                 "audio_end": end_ms, "confidence": 0.81, "text": " ".join(words),
                 "words": self._words(words, start_ms, end_ms)}]

    def final_messages(self, text: str, start_ms: int, end_ms: int) -> tuple[list[dict], str]:
        words = text.split()
        message = {"message_type": "FinalTranscript", "created": naive_iso(), "audio_start": start_ms,
                   "audio_end": end_ms, "confidence": 0.93 if words else 0.0, "text": text,
                   "words": self._words(words, start_ms, end_ms), "punctuated": True, "text_formatted": True}
        return [message], text

    def termination_messages(self) -> list[dict]:
        messages = []
        if self.extra_info:
            messages.append({"message_type": "SessionInformation",
                             "audio_duration_seconds": round(self.audio_samples / self.sample_rate, 3)})
        messages.append({"message_type": "SessionTerminated"})
        return messages

    def unknown_message(self) -> dict:
        return {"message_type": "LoopbackNovelty", "detail": "a message type this client has never seen"}

    def frame_error(self, ms: float) -> ProtocolError:
        code = 4032 if ms < self.frame_limits_ms[0] else 4033
        return ProtocolError(code, MSG[code], f"v2 audio frame of {ms:.1f} ms (allowed 100-2000 ms)")

    def rate_error(self, audio_s: float, elapsed_s: float) -> ProtocolError:
        return ProtocolError(4029, MSG[4029], f"audio faster than real time: {audio_s:.2f} s of audio in {elapsed_s:.2f} s")

    def idle_error(self) -> ProtocolError:
        return ProtocolError(4031, MSG[4031], f"no audio for {self.idle_timeout_s:g} s (idle timeout)")

    def expired_error(self) -> ProtocolError:
        return ProtocolError(4008, MSG[4008], None)

    # ---- client messages -----------------------------------------------------------------------
    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self.record.control.append({"_raw": text, "_t": time.monotonic()})
            raise ProtocolError(4100, MSG[4100], f"invalid JSON text frame: {text[:80]!r}")
        if isinstance(message, dict) and set(message) == {"audio_data"}:
            try:
                audio = base64.b64decode(message["audio_data"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ProtocolError(4101, MSG[4101], "audio_data is not base64") from None
            await self.on_audio(audio)
            return
        entry = dict(message) if isinstance(message, dict) else {"_value": message}
        entry["_t"] = time.monotonic()
        entry["_audio_ms"] = self.endpointer.position_ms
        self.record.control.append(entry)
        if not isinstance(message, dict) or not message:
            raise ProtocolError(4101, MSG[4101], f"control message is not a JSON object: {text[:80]!r}")
        unknown = set(message) - {"end_utterance_silence_threshold", "force_end_utterance", "terminate_session"}
        if unknown:
            raise ProtocolError(4101, MSG[4101], f"unknown v2 control field(s) {sorted(unknown)}")
        if "end_utterance_silence_threshold" in message:
            value = message["end_utterance_silence_threshold"]
            lo, hi = THRESHOLD_RANGE
            if type(value) is not int or not lo <= value <= hi:
                raise ProtocolError(4101, MSG[4101],
                                    f"end_utterance_silence_threshold={value!r} (must be an integer {lo}-{hi})")
            self.endpointer.silence_ms = value
        for flag in ("force_end_utterance", "terminate_session"):
            if flag in message and type(message[flag]) is not bool:
                raise ProtocolError(4101, MSG[4101], f"{flag}={message[flag]!r} (must be true)")
        if message.get("force_end_utterance"):
            await self.force_end()
        if message.get("terminate_session"):
            await self.terminate()
