"""v3 speakers, languages, revisions, LLM responses, warnings, heartbeats, keep-alive and the
connection parameters of the newer options, against a scripted transport."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from app.core.events import (Final, LLMResponse, Partial, Recovery, Revision, SessionStarted,
                             StreamError)
from app.core.session_config import SessionConfig
from app.core.streaming import urls, v3 as v3_module
from tests.core.streaming.test_clients import make, turn


def labelled(order, text, speaker, end=True, formatted=True, language=None, word_speaker=None):
    msg = turn(order, text, end=end, formatted=formatted)
    if speaker is not None:
        msg["speaker_label"] = speaker
    for w in msg["words"]:
        if word_speaker is not None:
            w["speaker"] = word_speaker
    if language is not None:
        msg["language_code"], msg["language_confidence"] = language, 0.93
    return msg


def test_begin_model_reaches_session_started():
    session, t, rec = make()
    t.auto = False
    t.push({"type": "Begin", "id": "s", "expires_at": 1759796682,
            "configuration": {"model": "universal-3-5-pro", "mode": "balanced"}})
    session.start(timeout=5)
    assert rec.of(SessionStarted)[0].model == "universal-3-5-pro"
    t.auto = True
    session.stop(timeout=5)


def test_finals_carry_speaker_language_and_unique_ids():
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push(labelled(0, "hello there", "A", language="en"))
    t.push(labelled(1, "hola a todos", None, language="es", word_speaker="B"))   # words only
    t.push(labelled(2, "ok", "UNKNOWN"))
    t.push(turn(3, "no labels", end=True))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 4)
    finals = rec.of(Final)
    assert [(f.speaker, f.language) for f in finals] == [("A", "en"), ("B", "es"),
                                                         ("UNKNOWN", None), (None, None)]
    assert len({f.id for f in finals}) == 4
    session.stop(timeout=5)


def test_partials_carry_the_speaker():
    session, t, rec = make()
    session.start(timeout=5)
    t.push(labelled(0, "hello", "B", end=False, formatted=False))
    assert rec.wait_for(lambda: rec.of(Partial))
    assert rec.of(Partial)[0].speaker == "B"
    session.stop(timeout=5)


def test_speaker_revision_names_the_final_by_id():
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push(labelled(0, "first", "A"))
    t.push(labelled(1, "second", "A"))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 2)
    first, second = rec.of(Final)
    t.push({"type": "SpeakerRevision", "revisions": [
        {"turn_order": 1, "speaker_label": "B", "words": []},
        {"turn_order": 0, "speaker_label": "A"},           # unchanged: no event
        {"turn_order": 9, "speaker_label": "C"}]})          # not ours: ignored
    t.push({"type": "SpeakerRevision", "revisions": [
        {"turn_order": 0, "words": [{"start": 1, "end": 2, "text": "first", "confidence": 0.9,
                                     "word_is_final": True, "speaker": "C"}]}]})
    assert rec.wait_for(lambda: len(rec.of(Revision)) == 2)
    time.sleep(0.1)
    assert rec.of(Revision) == [Revision(second.id, "B"), Revision(first.id, "C")]
    session.stop(timeout=5)


def test_revision_of_a_held_turn_applies_to_its_final():
    session, t, rec = make(format_turns=True)
    session.format_wait_s = 30
    session.start(timeout=5)
    t.push(labelled(0, "held turn", "A", formatted=False))
    t.push({"type": "SpeakerRevision", "revisions": [{"turn_order": 0, "speaker_label": "B"}]})
    t.push(labelled(0, "Held turn.", "A"))
    assert rec.wait_for(lambda: rec.of(Final))
    time.sleep(0.1)
    assert rec.of(Final)[0].speaker == "B" and rec.of(Revision) == []
    session.stop(timeout=5)


def test_revisions_after_a_reconnect_reach_the_new_sessions_finals():
    """turn_order restarts in each session: a revision maps to that session's final only."""
    ids = []
    for _ in range(2):
        session, t, rec = make(format_turns=False)
        session.start(timeout=5)
        t.push(labelled(0, "turn zero", "A"))
        assert rec.wait_for(lambda: rec.of(Final))
        t.push({"type": "SpeakerRevision", "revisions": [{"turn_order": 0, "speaker_label": "B"}]})
        assert rec.wait_for(lambda: rec.of(Revision))
        assert rec.of(Revision)[0].id == rec.of(Final)[0].id
        ids.append(rec.of(Final)[0].id)
        session.stop(timeout=5)
    assert ids[0] != ids[1]


def _answer(order, content=None, data=None):
    if data is None:
        data = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    return {"type": "LLMGatewayResponse", "turn_order": order, "transcript": "t", "data": data}


def test_llm_gateway_response_names_its_final():
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push(turn(4, "Good morning.", end=True))
    assert rec.wait_for(lambda: rec.of(Final))
    t.push(_answer(4, "Buenos días."))
    assert rec.wait_for(lambda: rec.of(LLMResponse))
    [answer] = rec.of(LLMResponse)
    assert (answer.turn_order, answer.text, answer.error) == (4, "Buenos días.", None)
    assert answer.final_id == rec.of(Final)[0].id
    session.stop(timeout=5)


def test_an_answer_before_its_final_waits_for_it_and_out_of_order_answers_match():
    session, t, rec = make(format_turns=True)
    session.start(timeout=5)
    t.push(turn(0, "one", end=True, formatted=False))      # held for its formatted version
    t.push(_answer(0, "uno"))                              # arrives before the final
    t.push(turn(1, "two", end=True, formatted=True))       # a later turn flushes turn 0
    t.push(_answer(1, "dos"))
    assert rec.wait_for(lambda: len(rec.of(LLMResponse)) == 2)
    events = [e for e in rec.events if isinstance(e, (Final, LLMResponse))]
    finals = {f.text: f.id for f in rec.of(Final)}
    by_text = {a.text: a.final_id for a in rec.of(LLMResponse)}
    assert by_text == {"uno": finals["one"], "dos": finals["two"]}
    # Each answer comes after its own final.
    for answer in rec.of(LLMResponse):
        final_at = next(i for i, e in enumerate(events)
                        if isinstance(e, Final) and e.id == answer.final_id)
        assert events.index(answer) > final_at
    session.stop(timeout=5)


@pytest.mark.parametrize("data, error", [
    ({"choices": []}, None),
    ({"error": {"message": "model refused\nthe request", "code": 400}}, "model refused the request"),
    ({"error": "quota exceeded"}, "quota exceeded"),
    (None, None),
])
def test_a_gateway_failure_is_an_answer_without_text(data, error):
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push(turn(2, "hello", end=True))
    msg = _answer(2, data=data if data is not None else {})
    if data is None:
        del msg["data"]
    t.push(msg)
    assert rec.wait_for(lambda: rec.of(LLMResponse))
    [answer] = rec.of(LLMResponse)
    assert answer.text is None and answer.error == error
    assert answer.final_id == rec.of(Final)[0].id
    session.stop(timeout=5)


def test_warning_is_a_plain_notice_and_the_session_goes_on():
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push({"type": "Warning", "warning_code": 3101, "warning": "Audio   is\nclipping"})
    t.push(turn(0, "still here", end=True))
    assert rec.wait_for(lambda: rec.of(Final))
    notice = rec.of(StreamError)[0]
    assert notice.recovery is Recovery.IGNORE and notice.code == 3101
    assert notice.message == "The speech service warns: Audio is clipping"
    session.stop(timeout=5)


def test_heartbeat_says_when_the_service_falls_behind_and_catches_up():
    session, t, rec = make()
    session.start(timeout=5)
    beat = {"type": "Heartbeat", "total_audio_received_ms": 1000, "total_duration_ms": 1000,
            "max_speech_probability": 0.2}
    for factor in (1.4, 0.6, 0.5, 0.95, 1.2, 1.3):
        t.push(dict(beat, realtime_factor=factor))
    assert rec.wait_for(lambda: len(rec.of(StreamError)) == 2)
    time.sleep(0.1)
    messages = [e.message for e in rec.of(StreamError)]
    assert "falling behind" in messages[0] and "0.60" in messages[0]
    assert messages[1] == "The speech service has caught up."
    assert all(e.recovery is Recovery.IGNORE for e in rec.of(StreamError))
    session.stop(timeout=5)


def test_unknown_types_are_logged_once(caplog):
    v3_module._unknown_seen.discard("BrandNewThing")
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    with caplog.at_level(logging.INFO, logger="app.core.streaming.v3"):
        for _ in range(3):
            t.push({"type": "BrandNewThing", "x": 1})
        t.push({"type": "SpeechStarted", "timestamp": 5})
        t.push({"type": "Silence", "start_ms": 0, "end_ms": 900})
        t.push(turn(0, "after", end=True))
        assert rec.wait_for(lambda: rec.of(Final))
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "BrandNewThing" in r.getMessage()]
    assert len(infos) == 1
    assert [type(e).__name__ for e in rec.events] == ["SessionStarted", "Final"]
    session.stop(timeout=5)


def test_keepalive_while_no_audio_flows():
    session, t, rec = make(inactivity_timeout_s=5)
    assert session.keepalive_s == 2.5
    session.keepalive_s = 0.2
    session.start(timeout=5)
    assert t.wait_for(lambda: {"type": "KeepAlive"} in t.texts(), timeout=3)
    assert parse_qs(urlsplit(t.url).query)["inactivity_timeout"] == ["5"]
    session.stop(timeout=5)


def test_no_keepalive_while_audio_flows():
    session, t, rec = make()
    session.keepalive_s = 0.3
    session.start(timeout=5)
    for _ in range(10):
        session.send_audio(b"\x01\x00" * 1600)
        time.sleep(0.1)
    assert {"type": "KeepAlive"} not in t.texts()
    session.stop(timeout=5)


def test_v2_has_no_keepalive():
    session, t, rec = make("v2")
    session.keepalive_s = 0.1
    session.start(timeout=5)
    time.sleep(0.4)
    assert not any("KeepAlive" in json.dumps(m) for m in t.texts())
    session.stop(timeout=5)


# ---- connection parameters ----------------------------------------------------------------
def q(config):
    return {k: v[0] for k, v in parse_qs(urlsplit(urls.ws_url(config)).query).items()}


def test_plain_config_sends_no_new_parameters():
    params = q(SessionConfig())
    assert set(params) == {"sample_rate", "encoding", "speech_model", "format_turns",
                           "min_turn_silence", "max_turn_silence"}


def test_every_new_option_on_the_wire():
    gateway = json.dumps({"model": "gpt-4o-mini", "max_tokens": 200,
                          "messages": [{"role": "user", "content": "Translate to French: {{turn}}"}]})
    config = SessionConfig(speech_model="universal-3-6-pro", speaker_labels=True, max_speakers=3,
                           language_codes=("en", "es"), language_detection=True,
                           prompt="  Weekly sync: Dana, Óscar  ", mode="max_accuracy",
                           voice_focus="far-field", filter_profanity=True, inactivity_timeout_s=30,
                           session_heartbeat=True, llm_gateway=gateway)
    config.validate()
    params = q(config)
    assert params["speaker_labels"] == "true" and params["max_speakers"] == "3"
    assert json.loads(params["language_codes"]) == ["en", "es"]
    assert params["language_detection"] == "true"
    assert params["prompt"] == "Weekly sync: Dana, Óscar"
    assert params["mode"] == "max_accuracy" and params["voice_focus"] == "far-field"
    assert params["filter_profanity"] == "true" and params["inactivity_timeout"] == "30"
    assert params["session_heartbeat"] == "true"
    assert json.loads(params["llm_gateway"]) == json.loads(gateway)


@pytest.mark.parametrize("changes,words", [
    (dict(protocol="v2", speaker_labels=True), "needs the v3"),
    (dict(protocol="v2", language_detection=True, speech_model="universal-streaming-multilingual"), "needs the v3"),
    (dict(engine="local", speaker_labels=True), "no speaker labels"),
    (dict(engine="local", language_codes=("es",)), "english only"),
    (dict(speech_model="whisper-rt", speaker_labels=True), "does not label speakers"),
    (dict(speech_model="universal-streaming-english", language_detection=True), "english"),
    (dict(speech_model="universal-streaming-english", language_codes=("es",)), "english only"),
    (dict(speech_model="universal-streaming-multilingual", language_codes=("ja",)), "not ja"),
    (dict(speech_model="universal-streaming-english", prompt="Board meeting"), "pro models"),
    (dict(speech_model="universal-streaming-english", mode="balanced"), "pro models"),
    (dict(speech_model="universal-3-5-pro", mode="fastest"), "unknown mode"),
    (dict(speech_model="universal-3-5-pro", voice_focus="headset"), "near-field"),
    (dict(speaker_labels=True, max_speakers=11), "1-10"),
    (dict(speaker_labels=True, max_speakers=0), "1-10"),
    (dict(max_speakers=2), "speaker labels on"),
    (dict(language_codes=("english",)), "not a language code"),
    (dict(speech_model="my model"), "speech model name"),
    (dict(speech_model=""), "empty"),
    (dict(inactivity_timeout_s=2), "5-3600"),
    (dict(speech_model="universal-3-5-pro", llm_gateway="{nope"), "not valid json"),
    (dict(speech_model="universal-3-5-pro", llm_gateway='{"model": "m", "max_tokens": 5}'), "messages"),
    (dict(speech_model="universal-streaming-english", llm_gateway=json.dumps(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})), "llm"),
])
def test_bad_option_combinations_are_refused_in_plain_words(changes, words):
    with pytest.raises(ValueError) as err:
        SessionConfig(**changes).validate()
    assert words in str(err.value).lower()


def test_fine_combinations():
    SessionConfig(speech_model="universal-streaming-english", language_codes=("en",)).validate()
    SessionConfig(speech_model="some-future-model", speaker_labels=True, prompt="x",
                  mode="balanced", language_codes=("ja",)).validate()
    SessionConfig(speech_model="whisper-rt", language_codes=("ja", "pt-BR"),
                  language_detection=True).validate()
    SessionConfig(engine="local", language_codes=("en",)).validate()


def test_without_unsupported_drops_with_notices():
    config = SessionConfig(speech_model="whisper-rt", speaker_labels=True, prompt="Topic")
    cleaned, notes = config.without_unsupported()
    assert not cleaned.speaker_labels and cleaned.prompt == ""
    assert len(notes) == 2 and any("does not label speakers" in n for n in notes)
    cleaned.validate()
    same, none = SessionConfig().without_unsupported()
    assert same == SessionConfig() and none == []


def test_languages_change_mid_session_and_carry_to_the_next_session():
    session, t, rec = make(speech_model="universal-streaming-multilingual", language_codes=("en",))
    session.start(timeout=5)
    assert json.loads(q(session.config)["language_codes"]) == ["en"]
    session.set_languages(["en", " es ", "en"])
    assert t.wait_for(lambda: {"type": "UpdateConfiguration", "language_codes": ["en", "es"]} in t.texts())
    assert session.config.language_codes == ("en", "es")      # a reconnect keeps them
    for bad, words in (([], "at least one"), (["english"], "not a language code"), (["ja"], "not ja")):
        with pytest.raises(ValueError, match=words):
            session.set_languages(bad)
    session.stop(timeout=5)


def test_v2_cannot_change_languages():
    session, t, rec = make("v2")
    with pytest.raises(ValueError, match="v3"):
        session.set_languages(["es"])
