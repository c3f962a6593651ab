"""The service turns gateway answers into translations of their finals, for every front."""

from __future__ import annotations

import json

import pytest

from app.core.credentials import Secret, save_api_key
from app.core.events import Final, LLMResponse, SessionStarted, Translation
from app.core.history import HistoryModel
from app.core.settings import DictStore, Settings
from app.core.status import State
from app.core.transcript import attach_translations, read_transcript
from tests.core.test_service import Harness


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def t(tmp_path):
    save_api_key(Secret("k"))
    clock = Clock()
    harness = Harness(Settings(DictStore({"translation/target": "Spanish"})),
                      transcript_dir=tmp_path / "transcripts", clock=clock)
    harness.clock = clock
    harness.service.start()
    harness.emit("mic", SessionStarted("s1", "v3"))
    yield harness
    harness.service.shutdown(5)


def translations(h):
    return [e for _, e, _ in h.rec.events if isinstance(e, Translation)]


def test_answers_out_of_order_become_translations_of_the_right_finals(t):
    one, two = Final("One.", 0, 500), Final("Two.", 600, 900)
    t.emit("mic", one)
    t.emit("mic", two)
    t.emit("mic", LLMResponse(1, "Two.", "Dos.", final_id=two.id))
    t.emit("mic", LLMResponse(0, "One.", "Uno.", final_id=one.id))
    assert translations(t) == [Translation(two.id, "es", "Dos."), Translation(one.id, "es", "Uno.")]
    # The raw gateway answers are not repeated to the fronts.
    assert not [e for _, e, _ in t.rec.events if isinstance(e, LLMResponse)]
    # History shows each under its own caption.
    rows = HistoryModel(t.service.transcript_dir, record=t.service.live_record).rows()
    assert [(r.text, r.translation) for r in rows] == [("One.", "Uno."), ("Two.", "Dos.")]
    # The transcript ties each to its final by id.
    path = t.service.transcript_path
    t.stop()
    entries = attach_translations(read_transcript(path))
    assert [(e.text, e.translation, e.translation_language) for e in entries if e.is_final] == [
        ("One.", "Uno.", "es"), ("Two.", "Dos.", "es")]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    record = next(r for r in records if r["type"] == "translation" and r["id"] == one.id)
    assert (record["language"], record["text"], record["source"]) == ("es", "Uno.", "mic")


def test_a_failed_answer_is_no_translation_and_the_status_says_why(t):
    final = Final("Hello.", 0, 500)
    t.emit("mic", final)
    t.emit("mic", LLMResponse(0, "Hello.", None, final_id=final.id, error="model refused"))
    assert translations(t) == []
    status = t.service.status
    assert status.state is State.LIVE
    assert "Translation unavailable" in status.notice and "model refused" in status.notice
    # Captions go on, and the notice clears once translations flow again.
    later = Final("Again.", 600, 900)
    t.emit("mic", later)
    t.emit("mic", LLMResponse(1, "Again.", "Otra vez.", final_id=later.id))
    assert translations(t) == [Translation(later.id, "es", "Otra vez.")]
    t.clock.now += 6
    t.service.tick()
    assert t.service.status.notice == ""


def test_an_empty_answer_is_no_translation(t):
    final = Final("Hello.", 0, 500)
    t.emit("mic", final)
    t.emit("mic", LLMResponse(0, "Hello.", "   ", final_id=final.id))
    assert translations(t) == [] and "no translation" in t.service.status.notice


def test_a_translation_that_never_comes_is_said_after_a_while(t):
    t.emit("mic", Final("Hello.", 0, 500))
    t.service.tick()
    assert t.service.status.notice == ""
    t.clock.now += 13
    t.service.tick()
    assert "no translation arrived" in t.service.status.notice
    assert t.service.status.state is State.LIVE


def test_without_translation_the_gateway_answer_passes_through(tmp_path):
    save_api_key(Secret("k"))
    h = Harness(transcript_dir=tmp_path)
    h.service.start()
    answer = LLMResponse(0, "x", "y", final_id=1)
    h.emit("mic", answer)
    assert [e for _, e, _ in h.rec.events if isinstance(e, LLMResponse)] == [answer]
    h.service.shutdown(5)


def test_headless_text_prints_the_translation_indented_and_json_names_its_final():
    import io

    from app.headless import Output
    out = io.StringIO()
    text = Output(False, stdout=out, stderr=io.StringIO())
    final = Final("Good morning.", 0, 500)
    text.event("mic", final)
    text.event("mic", Translation(final.id, "es", "Buenos\x1b[2J días.\n"))
    assert out.getvalue().splitlines() == ["Good morning.", "    Buenos [2J días. "]
    out = io.StringIO()
    Output(True, stdout=out, stderr=io.StringIO()).event("mic", Translation(7, "es", "Hola."))
    assert json.loads(out.getvalue()) == {"event": "translation", "id": 7, "language": "es",
                                          "text": "Hola.", "source": "mic"}
