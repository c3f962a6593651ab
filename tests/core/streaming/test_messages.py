"""Building and parsing every v2 and v3 message (wire reference §1.4-1.5, §3.3-3.4)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from app.core.streaming import messages as m

# ---- v2 server messages (examples from the wire reference §1.9) -----------------------------
V2_BEGINS = '{"message_type": "SessionBegins", "session_id": "f14499a6-c399-4c30-b1eb-0a33af64b1d9", "expires_at": "2023-11-04T16:51:38.316048"}'
V2_PARTIAL = '{"message_type": "PartialTranscript", "created": "2023-11-03T17:14:13.854523", "audio_start": 5310, "audio_end": 7540, "confidence": 0.59751355353605, "text": "how can i show", "words": [{"start": 7140, "end": 7175, "confidence": 0.466229424909777, "text": "how"}, {"start": 7220, "end": 7255, "confidence": 0.432059008767216, "text": "can"}]}'
V2_FINAL = '{"message_type": "FinalTranscript", "created": "2023-11-03T17:14:35.00332", "audio_start": 5310, "audio_end": 25580, "confidence": 0.853363490052184, "text": "How can I show these two slides?", "words": [{"start": 7140, "end": 7175, "confidence": 0.466229424909777, "text": "How"}], "punctuated": true, "text_formatted": true}'


def test_v2_session_begins():
    assert m.parse_v2(V2_BEGINS) == m.SessionBegins("f14499a6-c399-4c30-b1eb-0a33af64b1d9",
                                                    "2023-11-04T16:51:38.316048")


def test_v2_partial():
    msg = m.parse_v2(V2_PARTIAL)
    assert isinstance(msg, m.PartialTranscript)
    assert (msg.text, msg.audio_start, msg.audio_end) == ("how can i show", 5310, 7540)
    assert msg.words[1] == m.Word("can", 7220, 7255, 0.432059008767216)


def test_v2_final():
    msg = m.parse_v2(V2_FINAL)
    assert isinstance(msg, m.FinalTranscript)
    assert msg.text == "How can I show these two slides?" and msg.punctuated and msg.text_formatted
    assert (msg.audio_start, msg.audio_end) == (5310, 25580)


def test_v2_information_terminated_error_unknown():
    assert m.parse_v2('{"message_type": "SessionInformation", "audio_duration_seconds": 232.192}') \
        == m.SessionInformation(232.192)
    assert m.parse_v2('{"message_type": "SessionTerminated"}') == m.SessionTerminated()
    assert m.parse_v2('{"error": "Client sent audio too fast"}') == m.V2Error("Client sent audio too fast")
    unknown = m.parse_v2('{"message_type": "SomethingNew", "x": 1}')
    assert isinstance(unknown, m.Unknown) and unknown.kind == "SomethingNew"


@pytest.mark.parametrize("text", [
    "not json", "[]", "42", '"str"', "{}", '{"message_type": 5}',
    '{"message_type": "SessionBegins"}',
    '{"message_type": "PartialTranscript", "text": "x", "audio_start": 0}',
    '{"message_type": "FinalTranscript", "text": 3, "audio_start": 0, "audio_end": 1}',
    '{"message_type": "PartialTranscript", "text": "x", "audio_start": true, "audio_end": 1}',
    '{"message_type": "PartialTranscript", "text": "x", "audio_start": 0, "audio_end": 1, "words": [1]}',
    '{"message_type": "PartialTranscript", "text": "x", "audio_start": 0, "audio_end": 1, "words": {}}',
    '{"message_type": "SessionInformation"}',
    '{"message_type": "PartialTranscript", "text": "x", "audio_start": Infinity, "audio_end": 1}',
])
def test_v2_malformed(text):
    with pytest.raises(m.MalformedMessage):
        m.parse_v2(text)


def test_v2_client_messages():
    assert json.loads(m.build_v2_terminate()) == {"terminate_session": True}
    assert json.loads(m.build_v2_force_end()) == {"force_end_utterance": True}
    assert json.loads(m.build_v2_silence_threshold(300)) == {"end_utterance_silence_threshold": 300}
    assert json.loads(m.build_v2_silence_threshold(0)) == {"end_utterance_silence_threshold": 0}
    assert json.loads(m.build_v2_silence_threshold(20000)) == {"end_utterance_silence_threshold": 20000}
    for bad in (-1, 20001, 1.5, True, "300"):
        with pytest.raises(ValueError):
            m.build_v2_silence_threshold(bad)


# ---- v3 ------------------------------------------------------------------------------------
V3_TURN = '{"turn_order": 0, "turn_is_formatted": true, "end_of_turn": true, "transcript": "Hi, my name is Sonny.", "end_of_turn_confidence": 0.429525, "words": [{"start": 2160, "end": 2560, "text": "Hi,", "confidence": 0.868781, "word_is_final": true}], "utterance": "Hi, my name is Sonny.", "type": "Turn"}'


def test_v3_begin():
    assert m.parse_v3('{"type": "Begin", "id": "de5d9927-73a6-4be8-b52d-b4c07be37e6b", "expires_at": 1759796682}') \
        == m.Begin("de5d9927-73a6-4be8-b52d-b4c07be37e6b", 1759796682)
    extra = m.parse_v3('{"type": "Begin", "id": "x", "expires_at": 1, "configuration": '
                       '{"model": "universal-3-5-pro", "mode": "balanced", "api_version": "2026-11"}}')
    assert extra == m.Begin("x", 1, "universal-3-5-pro", "balanced", "2026-11")
    # The configuration is informational: a strange shape keeps the session.
    odd = m.parse_v3('{"type": "Begin", "id": "x", "expires_at": 1, "configuration": [1]}')
    assert odd == m.Begin("x", 1)
    odd = m.parse_v3('{"type": "Begin", "id": "x", "configuration": {"model": 5}}')
    assert odd.model is None


def test_v3_turn():
    msg = m.parse_v3(V3_TURN)
    assert msg == m.Turn(0, "Hi, my name is Sonny.", True, True, 0.429525,
                         (m.Word("Hi,", 2160, 2560, 0.868781, True),))
    partial = m.parse_v3('{"type": "Turn", "turn_order": 2, "end_of_turn": false, "transcript": "", '
                         '"words": [{"start": 1, "end": 2, "text": "hm", "word_is_final": false}]}')
    assert partial.words[0].is_final is False and not partial.end_of_turn


def test_v3_termination_error_unknown():
    assert m.parse_v3('{"type": "Termination", "audio_duration_seconds": 7, "session_duration_seconds": 7}') \
        == m.Termination(7, 7)
    assert m.parse_v3('{"type": "Error", "error_code": 3008, "error": "Session Expired: Maximum session duration exceeded"}') \
        == m.V3Error(3008, "Session Expired: Maximum session duration exceeded")
    for kind in ("FutureThing", "Begin2"):
        msg = m.parse_v3(json.dumps({"type": kind, "x": 1}))
        assert isinstance(msg, m.Unknown) and msg.kind == kind


def test_v3_turn_with_speakers_and_language():
    msg = m.parse_v3(json.dumps({
        "type": "Turn", "turn_order": 3, "turn_is_formatted": True, "end_of_turn": True,
        "transcript": "Hola a todos.", "end_of_turn_confidence": 0.8, "speaker_label": "B",
        "language_code": "es", "language_confidence": 0.97,
        "words": [{"start": 1, "end": 2, "text": "Hola", "confidence": 0.9, "word_is_final": True,
                   "speaker": "B"}]}))
    assert (msg.speaker_label, msg.language_code, msg.language_confidence) == ("B", "es", 0.97)
    assert msg.words[0].speaker == "B"
    plain = m.parse_v3(V3_TURN)
    assert (plain.speaker_label, plain.language_code, plain.words[0].speaker) == (None, None, None)
    blank = m.parse_v3(json.dumps({"type": "Turn", "turn_order": 1, "transcript": "a",
                                   "end_of_turn": True, "speaker_label": "  "}))
    assert blank.speaker_label is None
    long = m.parse_v3(json.dumps({"type": "Turn", "turn_order": 1, "transcript": "a",
                                  "end_of_turn": True, "speaker_label": "x" * 500}))
    assert long.speaker_label == "x" * 64


def test_v3_new_server_messages():
    assert m.parse_v3('{"type": "SpeechStarted", "timestamp": 14400, "confidence": 0.79}') \
        == m.SpeechStarted(14400, 0.79)
    assert m.parse_v3('{"type": "SpeechStarted", "timestamp": 10}') == m.SpeechStarted(10)
    assert m.parse_v3('{"type": "Warning", "warning_code": 4001, "warning": "Audio is clipping"}') \
        == m.V3Warning(4001, "Audio is clipping")
    assert m.parse_v3('{"type": "Heartbeat", "total_audio_received_ms": 5000, "total_duration_ms": 5100,'
                      ' "realtime_factor": 0.62, "max_speech_probability": 0.4}') \
        == m.Heartbeat(5000, 5100, 0.62, 0.4)
    assert m.parse_v3('{"type": "Silence", "start_ms": 100, "end_ms": 1100}') == m.Silence(100, 1100)
    llm = m.parse_v3(json.dumps({"type": "LLMGatewayResponse", "turn_order": 2, "transcript": "Hi.",
                                 "data": {"id": "c", "choices": [{"index": 0, "message": {
                                     "role": "assistant", "content": "Hola."}}]}}))
    assert llm == m.LLMGatewayResponse(2, "Hi.", "Hola.")
    failed = m.parse_v3('{"type": "LLMGatewayResponse", "turn_order": 2, "transcript": "Hi.", '
                        '"data": {"error": "quota"}}')
    assert failed == m.LLMGatewayResponse(2, "Hi.", None, error="quota")
    refused = m.parse_v3(json.dumps({"type": "LLMGatewayResponse", "turn_order": 3, "transcript": "x",
                                     "data": {"error": {"message": "refused\x1b[2J " + "y" * 300}}}))
    assert refused.content is None and refused.error.startswith("refused [2J y")
    assert len(refused.error) <= 200
    rev = m.parse_v3(json.dumps({"type": "SpeakerRevision", "revisions": [
        {"turn_order": 0, "speaker_label": "C", "words": [
            {"start": 1, "end": 2, "text": "ok", "confidence": 0.9, "word_is_final": True, "speaker": "C"}]},
        {"turn_order": 1, "speaker_label": "A"}]}))
    assert rev.revisions[0].turn_order == 0 and rev.revisions[0].speaker_label == "C"
    assert rev.revisions[0].words[0].speaker == "C"
    assert rev.revisions[1] == m.SpeakerRevisionItem(1, "A")
    assert m.parse_v3('{"type": "SpeakerRevision"}') == m.SpeakerRevision(())


@pytest.mark.parametrize("text", [
    '{"type": "SpeechStarted"}', '{"type": "Warning", "warning_code": 1}',
    '{"type": "Heartbeat", "total_audio_received_ms": 1, "total_duration_ms": 1}',
    '{"type": "Heartbeat", "total_audio_received_ms": 1, "total_duration_ms": 1, "realtime_factor": "x"}',
    '{"type": "Silence", "start_ms": 1}', '{"type": "LLMGatewayResponse", "transcript": "a"}',
    '{"type": "SpeakerRevision", "revisions": {}}', '{"type": "SpeakerRevision", "revisions": [3]}',
    '{"type": "SpeakerRevision", "revisions": [{"speaker_label": "A"}]}',
])
def test_v3_new_messages_malformed(text):
    with pytest.raises(m.MalformedMessage):
        m.parse_v3(text)


@pytest.mark.parametrize("text", [
    "{", "[1]", "{}", '{"type": 3}', '{"type": "Begin"}', '{"type": "Begin", "id": 5}',
    '{"type": "Turn", "turn_order": "1", "transcript": "", "end_of_turn": true}',
    '{"type": "Turn", "turn_order": 1, "transcript": "", "end_of_turn": "yes"}',
    '{"type": "Turn", "turn_order": 1, "transcript": "a", "end_of_turn": true, "words": [{"text": "a"}]}',
    '{"type": "Error", "error_code": "3005", "error": "x"}',
])
def test_v3_malformed(text):
    with pytest.raises(m.MalformedMessage):
        m.parse_v3(text)


def test_v3_client_messages():
    assert json.loads(m.build_v3_terminate()) == {"type": "Terminate"}
    assert json.loads(m.build_v3_force_endpoint()) == {"type": "ForceEndpoint"}
    assert json.loads(m.build_v3_keepalive()) == {"type": "KeepAlive"}
    assert json.loads(m.build_v3_update_configuration(min_turn_silence=400, max_turn_silence=1280)) == {
        "type": "UpdateConfiguration", "min_turn_silence": 400, "max_turn_silence": 1280}
    assert json.loads(m.build_v3_update_configuration(keyterms_prompt=["Añejo", 'a "b"'])) == {
        "type": "UpdateConfiguration", "keyterms_prompt": ["Añejo", 'a "b"']}
    assert json.loads(m.build_v3_update_configuration(language_codes=["en", "es"])) == {
        "type": "UpdateConfiguration", "language_codes": ["en", "es"]}
    with pytest.raises(ValueError):
        m.build_v3_update_configuration(sample_rate=8000)
    with pytest.raises(ValueError):
        m.build_v3_update_configuration()


# ---- property: parsers never fail in any other way ------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["type", "message_type", "turn_order", "transcript", "end_of_turn", "words",
                        "text", "audio_start", "audio_end", "id", "session_id", "error", "error_code",
                        "expires_at", "punctuated", "start", "end", "speaker_label", "language_code",
                        "language_confidence", "configuration", "timestamp", "warning", "warning_code",
                        "realtime_factor", "total_audio_received_ms", "total_duration_ms", "start_ms",
                        "end_ms", "data", "revisions"])
kinds = st.sampled_from(["Begin", "Turn", "Termination", "Error", "SpeechStarted", "Warning",
                         "Heartbeat", "Silence", "LLMGatewayResponse", "SpeakerRevision", "SessionBegins", "PartialTranscript",
                         "FinalTranscript", "SessionInformation", "SessionTerminated", "X"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=8), kinds)
def test_parsers_only_raise_malformed(obj, kind):
    for field in ("type", "message_type"):
        candidate = dict(obj, **{field: kind})
        for parse in (m.parse_v2, m.parse_v3):
            try:
                parse(json.dumps(candidate))
            except m.MalformedMessage:
                pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_parsers_survive_garbage(data):
    for parse in (m.parse_v2, m.parse_v3):
        try:
            parse(data)
        except m.MalformedMessage:
            pass
