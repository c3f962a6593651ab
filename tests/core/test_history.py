"""History view logic: live rows, past sessions, search, copy and export."""

from __future__ import annotations

import time

import pytest

from app.core.events import Final, Gap, Partial, SessionStarted
from app.core.history import HistoryModel, session_title
from app.core.transcript import TranscriptWriter, list_sessions


def clock():
    return time.mktime((2026, 3, 4, 9, 15, 0, 0, 0, -1))


def test_live_rows_search_and_copy(tmp_path):
    m = HistoryModel(tmp_path, clock=clock)
    assert m.add_live(Partial("Hel", 0, 10)) is None
    assert m.add_live(Final("  ", 0, 10)) is None
    assert m.add_live(SessionStarted("s", "v3")) is None
    r1 = m.add_live(Final("Hello World", 0, 900), "mic")
    r2 = m.add_live(Gap(900, 2500, "connection lost"), "mic")
    r3 = m.add_live(Final("The budget review", 3400, 4000), "system")
    assert (r1.index, r1.time_text, r1.source, r1.kind) == (0, "09:15:00", "mic", "final")
    assert r2.kind == "gap" and r2.text == "— no captions for 2.5 s (connection lost) —"
    assert [r.index for r in m.rows()] == [0, 1, 2]
    assert [r.text for r in m.rows("BUDGET review")] == ["The budget review"]
    assert [r.text for r in m.rows("system")] == ["The budget review"]   # labels are searchable
    assert m.rows("nothing like this") == []
    assert m.copy_text(m.rows()) == ("[09:15:00] mic: Hello World\n"
                                     "[09:15:00] mic: — no captions for 2.5 s (connection lost) —\n"
                                     "[09:15:00] system: The budget review")
    assert m.copy_text([r1], with_times=False) == "mic: Hello World"
    assert m.summary() == "2 captions · 1 gap (2.5 s without captions)"
    m.reset_live()
    assert m.rows() == [] and m.summary() == "0 captions"


def test_past_session_view_and_back_to_live(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v2", source="mic", clock=clock)
    w.on_event(Final("Saved words", 0, 500))
    w.close()
    m = HistoryModel(tmp_path, clock=clock)
    m.add_live(Final("live words", 0, 100))
    [info] = m.sessions()
    assert session_title(info) == "2026-03-04 09:15 · AssemblyAI (legacy v2) · mic · 1 caption"
    m.open_session(info.path)
    assert not m.is_live and [r.text for r in m.rows()] == ["Saved words"]
    assert m.suggested_name("srt") == f"{info.path.stem}.srt"
    m.show_live()
    assert m.is_live and [r.text for r in m.rows()] == ["live words"]
    assert m.suggested_name("vtt") == "captions_2026-03-04_09-15.vtt"
    with pytest.raises(OSError):
        m.open_session(tmp_path / "gone.jsonl")
    assert m.is_live


def test_export_prefers_the_autosaved_live_file(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3", source="mic")
    m = HistoryModel(tmp_path)
    for ev in (Final("one", 0, 500), Gap(500, 1500, "connection lost"), Final("two", 2000, 2600)):
        w.on_event(ev)
        m.add_live(ev, "mic")
    out = m.export(tmp_path / "x.vtt", live_file=w.path)
    text = out.read_text()
    assert "one" in text and "two" in text and "NOTE gap of 1.5 s" in text
    # Without the file (autosave off) the in-memory finals are exported.
    assert "two" in m.export(tmp_path / "y.srt").read_text()
    # A missing or stale file never hides what was shown.
    m.add_live(Final("three", 3000, 3500))
    assert "three" in m.export(tmp_path / "z.txt", live_file=w.path).read_text()
    assert "three" in m.export(tmp_path / "w.txt", live_file=tmp_path / "missing.jsonl").read_text()
    w.close()
    assert len(list_sessions(tmp_path)) == 1


def test_live_record_holds_the_sitting_and_a_late_view_sees_it_all(tmp_path):
    from app.core.history import LiveRecord
    record = LiveRecord(clock=clock)
    record.begin()
    for i in range(25):
        record.add(Final(f"caption {i}", i * 1000, i * 1000 + 500), "mic")
    record.add(Partial("half", 0, 1), "mic")
    # A view made now (History opened mid-meeting) starts with everything said so far.
    m = HistoryModel(tmp_path, clock=clock, record=record)
    assert m.summary() == "25 captions" and m.rows()[0].text == "caption 0"
    # The app records each new final before the view hears of it; the view shows that entry once.
    record.add(Final("caption 25", 25000, 25500), "mic")
    row = m.add_live(Final("caption 25", 25000, 25500), "mic")
    assert row.index == 25 and row.text == "caption 25" and len(m.rows()) == 26
    assert m.add_live(Partial("x", 0, 1), "mic") is None
    # A restart within the sitting keeps the record; a new sitting starts empty.
    record.begin(keep=True)
    assert len(record.entries) == 26
    m.reset_live()                 # the view never clears a shared record
    assert len(m.rows()) == 26
    record.begin()
    assert m.rows() == []


def test_running_session_is_not_also_listed_as_saved(tmp_path):
    from app.core.history import LiveRecord
    old = TranscriptWriter(tmp_path, protocol="local", source="mic", clock=lambda: clock() - 3600)
    old.on_event(Final("Earlier", 0, 500))
    old.close()
    record = LiveRecord(clock=clock)
    record.begin()
    running = TranscriptWriter(tmp_path, protocol="local", source="mic", clock=clock)
    record.add_file(running.path)
    running.on_event(Final("Now", 0, 500))
    m = HistoryModel(tmp_path, clock=clock, record=record)
    assert [s.path for s in m.sessions()] == [old.path]
    assert "offline engine" in session_title(m.sessions()[0])
    record.end()                   # stopped: now it is a saved session like any other
    running.close()
    assert len(m.sessions()) == 2
