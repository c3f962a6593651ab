"""Speakers and languages through the transcript (appended revision records, never a rewrite),
history (revisions and renames applied live and for past sessions) and every export format."""

from __future__ import annotations

import json
import time

import pytest

from app.core import export as ex
from app.core.events import Final, Revision, SessionStarted
from app.core.history import HistoryModel, session_title
from app.core.transcript import TranscriptWriter, list_sessions, read_transcript, resolve_speakers

CALL = [Final("Good morning.", 0, 900, speaker="A", language="en"),
        Final("Buenos días.", 1000, 1800, speaker="B", language="es"),
        Final("Shall we?", 2000, 2600, speaker="A", language="en"),
        Final("Mm.", 2700, 2900, speaker="UNKNOWN", language="en")]


def write_call(tmp_path):
    with TranscriptWriter(tmp_path, protocol="v3", source="system") as w:
        w.on_event(SessionStarted("s1", "v3", time.time() + 60, model="universal-3-5-pro"))
        for f in CALL:
            w.on_event(f)
        size_before = w.path.stat().st_size
        head_before = w.path.read_bytes()
        w.on_event(Revision(CALL[2].id, "C"))
        w.rename("A", "Dana")
        assert w.path.read_bytes()[:size_before] == head_before       # appended, never rewritten
    return w.path


def test_transcript_records_ids_speakers_languages_and_revisions(tmp_path):
    path = write_call(tmp_path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    finals = [r for r in records if r["type"] == "final"]
    assert [(r["id"], r["speaker"], r["language"]) for r in finals] == [
        (f.id, f.speaker, f.language) for f in CALL]
    assert {"type": "revision", "id": CALL[2].id, "speaker": "C"}.items() <= \
        next(r for r in records if r["type"] == "revision").items()
    assert next(r for r in records if r["type"] == "rename")["name"] == "Dana"
    assert next(r for r in records if r["type"] == "session")["model"] == "universal-3-5-pro"
    entries = resolve_speakers(read_transcript(path))
    names = [e.speaker_name for e in entries if e.kind == "final"]
    assert names == ["Dana", "Speaker B", "Speaker C", ""]


def test_plain_finals_stay_as_before(tmp_path):
    with TranscriptWriter(tmp_path, protocol="v3", source="mic") as w:
        w.on_event(Final("Hi.", 0, 100))
    record = [json.loads(line) for line in w.path.read_text().splitlines()][1]
    assert set(record) == {"type", "text", "audio_start", "audio_end", "source", "wall"}


def test_exports_use_revised_speakers_and_languages(tmp_path):
    entries = read_transcript(write_call(tmp_path))
    vtt = ex.to_vtt(entries)
    assert "<v Dana><lang en>Good morning.</lang>" in vtt
    assert "<v Speaker B><lang es>Buenos días.</lang>" in vtt
    assert "<v Speaker C><lang en>Shall we?</lang>" in vtt          # the revision moved it
    assert "\n<lang en>Mm.</lang>\n" in vtt                           # UNKNOWN: no voice
    srt = ex.to_srt(entries)
    assert "Dana: Good morning.\n" in srt
    assert "Speaker B: [ES] Buenos días.\n" in srt
    assert "Speaker C: [EN] Shall we?\n" in srt
    assert "\nMm.\n" in srt
    txt = ex.to_txt(entries)
    assert "Dana (en): Good morning." in txt and "Speaker B (es): Buenos días." in txt
    assert "(en) Mm." in txt


def test_hostile_speaker_labels_and_languages_are_inert_in_webvtt(tmp_path):
    with TranscriptWriter(tmp_path, protocol="v3", source="system") as w:
        w.on_event(Final("Text.", 0, 500, speaker="<c.x>A</c>", language="es><script"))
        w.rename("B", "Dana")
    vtt = ex.to_vtt(read_transcript(w.path))
    assert "<script" not in vtt and "<c.x>" not in vtt
    assert "<v Speaker &lt;c.x&gt;A&lt;/c&gt;>Text." in vtt


def test_history_shows_speakers_revisions_renames_and_model(tmp_path):
    m = HistoryModel(tmp_path)
    rows = [m.add_live(f, "system") for f in CALL]
    assert [r.speaker for r in rows] == ["Speaker A", "Speaker B", "Speaker A", ""]
    assert [r.language for r in rows] == ["en", "es", "en", "en"]
    changed = m.revise_live(Revision(CALL[2].id, "C"))
    assert changed.index == 2 and changed.speaker == "Speaker C"
    assert m.revise_live(Revision(CALL[2].id, "C")) is None
    assert m.revise_live(Revision(123456789, "C")) is None
    assert m.rename("A", "Dana") == "Dana"
    assert [r.speaker for r in m.rows()] == ["Dana", "Speaker B", "Speaker C", ""]
    assert [r.text for r in m.rows("dana")] == ["Good morning."]
    assert m.copy_text(m.rows()[:2], with_times=False) == "Dana: Good morning.\nSpeaker B: Buenos días."
    assert m.speakers() == [("A", "Dana"), ("B", "Speaker B"), ("C", "Speaker C")]
    with pytest.raises(ValueError, match="empty"):
        m.rename("B", "  ")
    vtt = ex.to_vtt(m.export_entries())
    assert "<v Dana>" in vtt and "<v Speaker C><lang en>Shall we?" in vtt
    # A past session shows its revisions and names too, and its model.
    path = write_call(tmp_path)
    m.open_session(path)
    assert [r.speaker for r in m.rows()] == ["Dana", "Speaker B", "Speaker C", ""]
    info = next(i for i in list_sessions(tmp_path) if i.path == path)
    assert info.model == "universal-3-5-pro" and "universal-3-5-pro" in session_title(info)


def test_with_both_sources_the_microphone_is_you_in_exports(tmp_path):
    with TranscriptWriter(tmp_path, protocol="v3", source="both") as w:
        w.on_event(Final("I agree.", 0, 500, speaker="A"), source="mic")
        w.on_event(Final("Great.", 600, 900, speaker="A"), source="system")
    entries = read_transcript(w.path)
    vtt = ex.to_vtt(entries)
    assert "<v You>I agree." in vtt and "<v Speaker A>Great." in vtt
    plain = [e for e in resolve_speakers(read_transcript(w.path)) if e.kind == "final"]
    assert [e.speaker_name for e in plain] == ["You", "Speaker A"]
