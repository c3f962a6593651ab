"""The headless CLI's pieces in-process: vocabulary parsing, output formats, commands, exit codes."""

from __future__ import annotations

import io
import json

import pytest

from app.cli import EXIT_AUDIO, EXIT_AUTH, EXIT_CONNECTION, EXIT_OK, EXIT_USAGE, build_parser
from app.core.events import (Final, Gap, Partial, Reconnecting, Recovery, Revision, SessionEnded,
                             SessionStarted, StreamError)
from app.core import vocabulary
from app.core.credentials import Secret
from app.core.event_json import event_json
from app.core.run_plan import PlanError, RunValues, overrides_from_args, plan_run
from app.core.service import RunOutcome
from app.core.settings import DictStore, Settings
from app.headless import Output, exit_code, handle_command, start_error_code


@pytest.mark.parametrize("text,terms", [
    ("Kubernetes, Añejo", ("Kubernetes", "Añejo")),
    ('"Smith, John", O\'Brien', ("Smith, John", "O'Brien")),
    ('5" screen,  naïve café ,', ('5" screen', "naïve café")),
    ("", ()), ("  ", ()), (None, ()),
])
def test_parse_vocabulary(text, terms):
    assert tuple(vocabulary.parse_text(text)) == terms


def plan(*argv, store=None, key=Secret("k")):
    args = build_parser().parse_args(["--headless", *argv])
    values = RunValues(Settings(DictStore(store or {})), overrides_from_args(args))
    return plan_run(values, key)


def test_flags_override_settings_and_defaults_fill_in():
    p = plan("--source", "file:x.wav", "--protocol", "v2", "--silence-ms", "300",
             store={"connection/encoding": "pcm_mulaw", "recognition/vocabulary": ["Saved"]})
    c = p.config
    assert (c.protocol, c.silence_ms, c.encoding, c.vocabulary) == ("v2", 300, "pcm_mulaw", ("Saved",))
    assert p.source_spec == "file:x.wav" and p.config.engine == "assemblyai"
    assert plan("--vocabulary", "A, B", store={"recognition/vocabulary": ["Saved"]}).config.vocabulary == ("A", "B")


def test_saved_chunk_is_clamped_but_a_flag_is_checked():
    assert plan("--protocol", "v2", store={"connection/chunk_ms": 50}).config.chunk_ms == 100
    with pytest.raises(PlanError, match="outside the v2 limits"):
        plan("--protocol", "v2", "--chunk-ms", "50")


@pytest.mark.parametrize("argv,match", [
    (["--protocol", "v2", "--region", "eu"], "US region"),
    (["--server", "ftp://x"], "http://HOST:PORT"),
    (["--silence-ms", "20001"], "0-20000"),
    (["--vocabulary", "x" * 51], "50 characters"),
    (["--auth", "broker"], "token URL"),
    (["--sample-rate", "4000"], "8000-48000"),
])
def test_configuration_errors(argv, match):
    with pytest.raises(PlanError, match=match) as raised:
        plan(*argv)
    assert start_error_code(raised.value) == EXIT_USAGE


def test_no_key_is_an_authentication_exit():
    with pytest.raises(PlanError, match="No AssemblyAI API key") as raised:
        plan("--engine", "assemblyai", key=None)
    assert start_error_code(raised.value) == EXIT_AUTH


def test_json_events():
    final = Final("Hi.", 10, 900)
    assert event_json(final) == {"event": "final", "text": "Hi.", "audio_start": 10, "audio_end": 900,
                                 "id": final.id, "speaker": None, "language": None}
    assert event_json(Partial("hi", 10, 500))["event"] == "partial"
    assert event_json(SessionStarted("id", "v3", 5.0)) == {"event": "session_started", "session_id": "id",
                                                           "protocol": "v3", "expires_at": 5.0,
                                                           "model": None}
    assert event_json(SessionEnded(2.5)) == {"event": "session_ended", "audio_duration_s": 2.5}
    assert event_json(StreamError(4001, "Not authorized.", Recovery.STOP)) == {
        "event": "error", "code": 4001, "message": "Not authorized.", "recovery": "stop", "retryable": False}
    assert event_json(Reconnecting(2, 1.5, "lost"))["event"] == "reconnecting"
    assert event_json(Gap(100, 2000, "outage")) == {"event": "gap", "start_ms": 100, "duration_ms": 2000,
                                                    "reason": "outage"}


def test_plain_output_finals_only_and_notices_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    o = Output(False, out, err)
    for e in (SessionStarted("s", "v3"), Partial("he", 0, 1), Final("Hello.", 0, 900), Final("  ", 0, 1),
              StreamError(None, "The connection to the server was lost; reconnecting.", Recovery.RECONNECT),
              Reconnecting(1, 0.4, "lost"), Gap(900, 1500, "outage"), SessionEnded(None)):
        o.event("file", e)
    assert out.getvalue() == "Hello.\n"
    assert "reconnecting in 0.4 s" in err.getvalue() and "1.5 s of audio" in err.getvalue()
    labelled = io.StringIO()
    Output(False, labelled, err, labelled=True).event("mic", Final("Hi.", 0, 1))
    assert labelled.getvalue() == "[mic] Hi.\n"


def test_json_output_is_utf8_one_object_per_line():
    out = io.StringIO()
    o = Output(True, out, io.StringIO())
    o.event("file", Final("Añejo ✓", 0, 1))
    o.event("file", Partial("x", 0, 1))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "Añejo ✓" in lines[0]
    assert json.loads(lines[0])["source"] == "file"


class FakeService:
    def __init__(self):
        self.calls = []

    def force_end(self):
        self.calls.append("force_end")

    def set_silence_threshold(self, ms):
        self.calls.append(("silence", ms))

    def set_vocabulary(self, terms):
        self.calls.append(("vocab", terms))

    def stop(self):
        self.calls.append("stop")


def test_stdin_commands():
    p, err = FakeService(), io.StringIO()
    out = Output(False, io.StringIO(), err)
    for line in ("force-end", "silence 300", 'vocabulary "a, b", c', "silence abc", "silence 30000",
                 "dance", "", "stop"):
        handle_command(line, p, out)
    assert p.calls == ["force_end", ("silence", 300), ("vocab", ("a, b", "c")), "stop"]
    assert "unknown command 'dance'" in err.getvalue() and "0-20000" in err.getvalue()


@pytest.mark.parametrize("error,source_error,code", [
    (None, None, EXIT_OK),
    (StreamError(401, "x", Recovery.STOP), None, EXIT_AUTH),
    (StreamError(4002, "x", Recovery.STOP), None, EXIT_AUTH),
    (StreamError(3009, "x", Recovery.STOP), None, EXIT_AUTH),
    (StreamError(4000, "x", Recovery.STOP), None, EXIT_USAGE),
    (StreamError(404, "x", Recovery.STOP), None, EXIT_USAGE),
    (StreamError(None, "refused; retrying.", Recovery.RECONNECT), None, EXIT_CONNECTION),
    (StreamError(3007, "x", Recovery.BUG), None, EXIT_CONNECTION),
    (StreamError(None, "gone", Recovery.STOP), OSError("gone"), EXIT_AUDIO),
])
def test_exit_codes(error, source_error, code):
    assert exit_code(RunOutcome(error, source_error))[0] == code


# ---- speakers, languages, Pro options ------------------------------------------------------------
def test_recognition_flags_reach_the_config():
    c = plan("--speech-model", "universal-3-6-pro", "--speaker-labels", "--max-speakers", "3",
             "--language", "en, es,en", "--language-detection", "--prompt", "Budget review: Dana, Óscar",
             "--mode", "max_accuracy", "--voice-focus", "far-field").config
    assert (c.speaker_labels, c.max_speakers, c.language_codes) == (True, 3, ("en", "es"))
    assert c.language_detection and c.prompt == "Budget review: Dana, Óscar"
    assert (c.mode, c.voice_focus) == ("max_accuracy", "far-field")


@pytest.mark.parametrize("argv,match", [
    (["--protocol", "v2", "--speaker-labels"], "needs the v3"),
    (["--speech-model", "whisper-rt", "--speaker-labels"], "does not label speakers"),
    (["--max-speakers", "3"], "needs --speaker-labels"),
    (["--speaker-labels", "--max-speakers", "12"], "1-10"),
    (["--language", " , "], "at least one language"),
    (["--language", "english"], "not a language code"),
    (["--prompt", "Team sync"], "Pro models"),
    (["--speech-model", "universal-streaming-english", "--language", "es"], "English only"),
    (["--speech-model", "universal-streaming-multilingual", "--language", "ja"], "not ja"),
])
def test_recognition_flag_errors(argv, match):
    with pytest.raises(PlanError, match=f"(?i){match}"):
        plan(*argv)


def test_saved_options_another_model_lacks_become_notes():
    p = plan("--speech-model", "whisper-rt", store={"recognition/speaker_labels": True,
                                                    "recognition/prompt": "Topic"})
    assert not p.config.speaker_labels and p.config.prompt == ""
    assert len(p.notes) == 2 and all("off for this run" in n for n in p.notes)


class Named:
    """Feeds an Output the way the service does: it records each final and drops revisions
    that change nothing before the front sees them."""

    def __init__(self, output):
        self.output = output
        self.names = output.names

    def event(self, label, event):
        if isinstance(event, Final):
            self.names.note_final(event.id, event.speaker, label)
        elif isinstance(event, Revision) and self.names.revise(event.id, event.speaker) is None:
            return
        self.output.event(label, event)


def test_text_output_names_the_speaker_and_json_carries_id_speaker_language():
    out, err = io.StringIO(), io.StringIO()
    o = Named(Output(False, out, err))
    first = Final("Good morning.", 0, 900, speaker="A", language="en")
    o.event("file", first)
    o.event("file", Final("Mm.", 900, 1000, speaker="UNKNOWN"))
    o.names.rename("B", "Dana")
    o.event("file", Final("Hola.", 1000, 1900, speaker="B", language="es"))
    o.event("file", Final("No labels.", 1900, 2500))
    o.event("file", Revision(first.id, "B"))
    assert out.getvalue().splitlines() == ["Speaker A: Good morning.", "Mm.", "Dana: Hola.", "No labels."]
    assert 'speaker revised: "Good morning." was said by Dana.' in err.getvalue()

    jout = io.StringIO()
    j = Named(Output(True, jout, io.StringIO()))
    final = Final("Hola.", 10, 900, speaker="B", language="es")
    j.event("system", SessionStarted("s", "v3", 5.0, model="universal-3-5-pro"))
    j.event("system", final)
    j.event("system", Revision(final.id, "C"))
    j.event("system", Revision(final.id, "C"))           # no change: nothing printed
    j.event("system", Revision(12345678, "C"))           # unknown final: nothing printed
    records = [json.loads(line) for line in jout.getvalue().splitlines()]
    assert records[0]["model"] == "universal-3-5-pro"
    assert records[1] == {"event": "final", "text": "Hola.", "audio_start": 10, "audio_end": 900,
                          "id": final.id, "speaker": "Speaker B", "language": "es", "source": "system"}
    assert records[2] == {"event": "revision", "id": final.id, "speaker": "Speaker C", "source": "system"}
    assert len(records) == 3


def test_both_sources_the_microphone_is_you():
    out = io.StringIO()
    o = Output(False, out, io.StringIO(), labelled=True)
    o.names.mic_is_you = True
    o.event("mic", Final("I agree.", 0, 500))
    o.event("system", Final("Great.", 0, 500, speaker="A"))
    assert out.getvalue().splitlines() == ["[mic] You: I agree.", "[system] Speaker A: Great."]


def test_unique_final_ids():
    ids = {Final("x", 0, 1).id for _ in range(1000)}
    assert len(ids) == 1000


def test_an_informational_stream_error_is_a_notice_in_json_not_an_error():
    from app.core.events import Recovery, StreamError
    assert event_json(StreamError(None, "Captions are behind real time.", Recovery.IGNORE)) == {
        "event": "notice", "message": "Captions are behind real time."}
    assert event_json(StreamError(1011, "Server problem.", Recovery.RECONNECT))["event"] == "error"


def test_help_names_the_key_variable_and_the_exit_codes():
    from app.cli import build_parser
    text = " ".join(build_parser().format_help().split())
    assert "ASSEMBLYAI_API_KEY" in text
    assert "Exit codes: 0 ok, 2 usage or configuration, 3 key or authorization, 4 connection, 5 audio device" in text
def test_languages_command():
    class P:
        def __init__(self):
            self.codes = None

        def set_languages(self, codes):
            self.codes = codes

    err = io.StringIO()
    o = Output(False, io.StringIO(), err)
    service = P()
    handle_command("languages en, es", service, o)
    assert service.codes == ("en", "es") and "languages set to en, es" in err.getvalue()
    handle_command("languages  ", service, o)
    assert "at least one language" in err.getvalue()


def test_offline_engine_refuses_speaker_labels_in_plain_words(monkeypatch):
    from app import headless
    monkeypatch.setattr(headless, "_load_settings", lambda: Settings(DictStore({})))
    args = build_parser().parse_args(["--headless", "--engine", "local", "--speaker-labels",
                                      "--source", "file:nowhere.wav"])
    err = io.StringIO()
    assert headless.run_headless(args, stdout=io.StringIO(), stderr=err) == EXIT_USAGE
    assert "offline engine has no speaker labels" in err.getvalue()
