"""Property tests: the wire-message parsers and the settings loader never fail on what they are given.

- ``parse_v2`` / ``parse_v3``: any text or bytes a server could send gives a message value or a
  ``MalformedMessage`` — never another exception — and well-formed messages parse to exactly
  their fields.
- ``Settings.get``: any raw stored value (strings from an INI file, numbers, lists, junk) never
  raises and always yields a value the preference accepts.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from app.core.settings import PREFS, DictStore, Settings
from app.core.streaming import messages as m

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Numbers a JSON decoder accepts but arithmetic chokes on (Python's json reads NaN/Infinity).
nasty_numbers = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 10**400, -(10**400),
                                 2**63, -1, -0.0, 0.5])
scalars = (nasty_numbers | st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**400, max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=15)


def _parse_ok_or_malformed(parse, frame):
    try:
        return parse(frame)
    except m.MalformedMessage:
        return None


# ---------------------------------------------------------------------------- raw frames

@PROPS
@given(st.text() | st.binary())
@example("")
@example("null")
@example("[1, 2]")
@example('"just a string"')
@example("{")
@example(b"\xff\xfe{}")
def test_any_frame_parses_or_is_malformed(frame):
    _parse_ok_or_malformed(m.parse_v2, frame)
    _parse_ok_or_malformed(m.parse_v3, frame)


@PROPS
@given(json_values)
def test_any_json_value_parses_or_is_malformed(value):
    frame = json.dumps(value)
    _parse_ok_or_malformed(m.parse_v2, frame)
    _parse_ok_or_malformed(m.parse_v3, frame)


def test_absurdly_nested_json_is_malformed_not_a_crash():
    frame = "[" * 100_000 + "]" * 100_000
    for parse in (m.parse_v2, m.parse_v3):
        with pytest.raises(m.MalformedMessage):
            parse(frame)


# ---------------------------------------------------------------------------- mutated messages

V2_TEMPLATES = [
    {"message_type": "SessionBegins", "session_id": "c5029749-1f2b-4a6d-9b0e-0d6f3a0d9a11",
     "expires_at": "2023-11-04T16:51:38.316048"},
    {"message_type": "PartialTranscript", "text": "hel", "audio_start": 0, "audio_end": 480,
     "confidence": 0.8, "words": [{"text": "hel", "start": 10, "end": 400, "confidence": 0.8}],
     "created": "2023-11-04T16:51:38.316048"},
    {"message_type": "FinalTranscript", "text": "Hello.", "audio_start": 0, "audio_end": 900,
     "confidence": 0.9, "punctuated": True, "text_formatted": True,
     "words": [{"text": "Hello.", "start": 10, "end": 800, "confidence": 0.9}]},
    {"message_type": "SessionInformation", "audio_duration_seconds": 12.5},
    {"message_type": "SessionTerminated"},
    {"error": "Insufficient account balance"},
]
V3_TEMPLATES = [
    {"type": "Begin", "id": "de5d9927-73a6-4be8-b52d-b4c07be37e6b", "expires_at": 1759796682},
    {"type": "Turn", "turn_order": 0, "turn_is_formatted": True, "end_of_turn": True,
     "transcript": "Hello there.", "end_of_turn_confidence": 0.9,
     "words": [{"text": "Hello", "start": 100, "end": 400, "confidence": 0.9, "word_is_final": True}]},
    {"type": "Termination", "audio_duration_seconds": 10, "session_duration_seconds": 11},
    {"type": "Error", "error_code": 3008, "error": "Session Expired: Maximum session duration exceeded"},
]


@st.composite
def mutated(draw, templates):
    msg = json.loads(json.dumps(draw(st.sampled_from(templates))))
    keys = sorted(msg)
    for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))):
        if draw(st.booleans()):
            del msg[key]
        else:
            msg[key] = draw(json_values)
    if "words" in msg and isinstance(msg["words"], list) and msg["words"] and draw(st.booleans()):
        word = msg["words"][0]
        if isinstance(word, dict):
            word[draw(st.sampled_from(["text", "start", "end", "confidence", "word_is_final"]))] = draw(json_values)
    return msg


@PROPS
@given(mutated(V2_TEMPLATES))
@example({"message_type": "FinalTranscript", "text": "", "audio_start": math.inf, "audio_end": 0})
@example({"message_type": "PartialTranscript", "text": "", "audio_start": 0, "audio_end": math.nan})
@example({"message_type": "SessionInformation", "audio_duration_seconds": 10**400})
@example({"message_type": "FinalTranscript", "text": "", "audio_start": 0, "audio_end": 1,
          "confidence": 10**400})
def test_v2_messages_with_any_field_values(msg):
    _parse_ok_or_malformed(m.parse_v2, json.dumps(msg))


@PROPS
@given(mutated(V3_TEMPLATES))
@example({"type": "Begin", "id": "x", "expires_at": math.nan})
@example({"type": "Turn", "turn_order": 0, "transcript": "", "end_of_turn": True,
          "words": [{"text": "a", "start": math.inf, "end": 1}]})
@example({"type": "Turn", "turn_order": 0, "transcript": "", "end_of_turn": True,
          "end_of_turn_confidence": 10**400})
def test_v3_messages_with_any_field_values(msg):
    _parse_ok_or_malformed(m.parse_v3, json.dumps(msg))


finite = st.floats(min_value=0, max_value=1e7, allow_nan=False) | st.integers(0, 10**7)
words_v3 = st.lists(st.fixed_dictionaries({
    "text": st.text(max_size=12), "start": st.integers(0, 10**7), "end": st.integers(0, 10**7),
    "confidence": st.floats(0, 1), "word_is_final": st.booleans()}), max_size=5)


@PROPS
@given(st.integers(0, 10**6), st.text(), st.booleans(), st.booleans(), st.floats(0, 1), words_v3)
def test_well_formed_v3_turn_parses_to_its_fields(order, text, end, formatted, conf, words):
    parsed = m.parse_v3(json.dumps({"type": "Turn", "turn_order": order, "transcript": text,
                                    "end_of_turn": end, "turn_is_formatted": formatted,
                                    "end_of_turn_confidence": conf, "words": words}))
    assert isinstance(parsed, m.Turn)
    assert (parsed.turn_order, parsed.transcript, parsed.end_of_turn, parsed.turn_is_formatted) == (
        order, text, end, formatted)
    assert [(w.text, w.start, w.end, w.is_final) for w in parsed.words] == [
        (w["text"], w["start"], w["end"], w["word_is_final"]) for w in words]


@PROPS
@given(st.sampled_from(["PartialTranscript", "FinalTranscript"]), st.text(), finite, finite)
def test_well_formed_v2_transcripts_parse_to_their_fields(kind, text, start, end):
    parsed = m.parse_v2(json.dumps({"message_type": kind, "text": text, "audio_start": start,
                                    "audio_end": end, "confidence": 0.5, "words": []}))
    assert type(parsed).__name__ == kind
    assert (parsed.text, parsed.audio_start, parsed.audio_end) == (text, round(start), round(end))


@PROPS
@given(st.text(min_size=1, max_size=30), st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_unknown_types_are_unknown_not_errors(kind, extra):
    known3 = {"Begin", "Turn", "Termination", "Error", "SpeechStarted", "Warning", "Heartbeat",
              "Silence", "LLMGatewayResponse", "SpeakerRevision"}
    known2 = {"SessionBegins", "PartialTranscript", "FinalTranscript", "SessionInformation",
              "SessionTerminated"}
    extra = {k: v for k, v in extra.items() if k not in ("type", "message_type")}
    if kind not in known3:
        assert m.parse_v3(json.dumps({**extra, "type": kind})) == m.Unknown(kind)
    if kind not in known2:
        assert m.parse_v2(json.dumps({**extra, "message_type": kind})) == m.Unknown(kind)


@PROPS
@given(st.integers(-10**6, 10**6) | st.booleans() | st.floats() | st.text(max_size=5))
def test_v2_silence_threshold_builder_accepts_only_the_documented_range(ms):
    valid = isinstance(ms, int) and not isinstance(ms, bool) and 0 <= ms <= 20000
    if valid:
        assert json.loads(m.build_v2_silence_threshold(ms)) == {"end_utterance_silence_threshold": ms}
    else:
        with pytest.raises(ValueError):
            m.build_v2_silence_threshold(ms)


# ---------------------------------------------------------------------------- settings loader

raw_values = (json_values | st.binary(max_size=10) | st.tuples(st.text(max_size=5))
              | st.sampled_from(["true", "false", "1", "0", "yes", "", " 160 ", "160", "#FFAA00",
                                 "#ffaa0", "v2", "v3", "auto", "local", "9" * 5000, "-0", "１２"]))


def _valid(pref, value) -> bool:
    if pref.coerce(value) != value:     # a loaded value is a fixed point of validation
        return False
    if pref.kind == "bool":
        return isinstance(value, bool)
    if pref.kind == "int":
        return (isinstance(value, int) and not isinstance(value, bool)
                and (pref.minimum is None or value >= pref.minimum)
                and (pref.maximum is None or value <= pref.maximum))
    if pref.kind == "choice":
        return value in pref.choices
    if pref.kind == "list":
        return isinstance(value, tuple) and all(isinstance(i, str) for i in value)
    return isinstance(value, str)


@PROPS
@given(st.sampled_from(PREFS), raw_values)
def test_settings_get_never_raises_and_yields_a_valid_value(pref, raw):
    s = Settings(DictStore({pref.key: raw}))
    value = s.get(pref.key)
    assert _valid(pref, value)
    if value == pref.default and raw is not None:
        # falling back is fine; a warning is only due when the raw value really was unusable
        try:
            pref.coerce(raw)
        except (ValueError, TypeError):
            assert s.warnings


@PROPS
@given(st.dictionaries(st.sampled_from([p.key for p in PREFS]), raw_values))
def test_snapshot_of_a_corrupt_store_is_complete_and_valid(data):
    snap = Settings(DictStore(data)).snapshot()
    assert set(snap) == {p.key for p in PREFS}
    for pref in PREFS:
        assert _valid(pref, snap[pref.key])


@PROPS
@given(st.sampled_from(PREFS), raw_values)
def test_settings_set_validates_and_round_trips_through_a_string_store(pref, raw):
    """What set() accepts reads back unchanged, also after an INI-style str() round trip."""
    s = Settings(DictStore())
    try:
        s.set(pref.key, raw)
    except (ValueError, TypeError):
        assert s.get(pref.key) == pref.default     # a refused value changes nothing
        return
    value = s.get(pref.key)
    assert _valid(pref, value)
    stored = s.store.value(pref.key)
    assume(pref.kind != "list")           # QSettings keeps lists as lists, not as str()
    as_text = "true" if stored is True else "false" if stored is False else str(stored)
    assert Settings(DictStore({pref.key: as_text})).get(pref.key) == value
