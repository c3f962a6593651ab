"""The durable transcript: records, durability, damage tolerance, listing and retention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import APP_ID, __version__
from app.core import transcript as tr
from app.core.events import (Final, Gap, Partial, Reconnecting, Recovery, SessionEnded,
                             SessionStarted, StreamError)
from app.core.transcript import TranscriptWriter, list_sessions, prune, read_transcript

ROOT = Path(__file__).resolve().parents[2]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_default_dir_is_under_the_platform_data_dir(_private_dirs):
    d = tr.default_transcript_dir()
    assert d == _private_dirs / "data" / APP_ID / "transcripts"


def test_header_then_events_in_order(tmp_path):
    w = TranscriptWriter(tmp_path / "t", protocol="v3", source="mic")
    assert w.path.parent == tmp_path / "t" and w.path.suffix == ".jsonl"
    w.on_event(SessionStarted("sess-1", "v3", expires_at=123.0))
    w.on_event(Partial("hel", 0, 300))
    w.on_event(Final("Hello there.", 100, 900))
    w.on_event(Gap(900, 2500, "connection lost"))
    w.on_event(Reconnecting(1, 0.4, "connection lost"))
    w.on_event(SessionStarted("sess-2", "v3"))
    w.on_event(Final("Again.", 3400, 4000), "system")
    w.on_event(SessionEnded(4.0))
    w.on_event(StreamError(1008, "Not authorised", Recovery.STOP))
    w.close()

    recs = lines_of(w.path)
    assert [r["type"] for r in recs] == ["header", "session", "final", "gap", "reconnect", "session",
                                         "final", "error", "end"]
    h = recs[0]
    assert h["protocol"] == "v3" and h["source"] == "mic" and h["app"] == APP_ID
    assert h["app_version"] == __version__ and abs(h["started"] - time.time()) < 60
    assert h["started_at"][:4].isdigit()
    assert recs[1]["session_id"] == "sess-1" and recs[1]["expires_at"] == 123.0
    assert recs[2] == {**recs[2], "text": "Hello there.", "audio_start": 100, "audio_end": 900,
                       "source": "mic"}
    assert recs[3]["duration_ms"] == 2500 and recs[3]["start_ms"] == 900
    assert recs[6]["source"] == "system"
    assert all("wall" in r for r in recs[1:])
    assert recs[7]["code"] == 1008 and recs[7]["recovery"] == "stop"

    entries = read_transcript(w.path)
    assert [e.text for e in tr.finals(entries)] == ["Hello there.", "Again."]
    gap = next(e for e in entries if e.kind == "gap")
    assert (gap.start_ms, gap.duration_ms, gap.reason) == (900, 2500, "connection lost")


def test_empty_finals_are_not_recorded(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.on_event(Final("  ", 0, 10))
    w.close()
    assert [r["type"] for r in lines_of(w.path)] == ["header", "end"]


def test_each_record_is_on_disk_before_close(tmp_path):
    """Flushed per record: another reader sees it while the writer is still open."""
    w = TranscriptWriter(tmp_path, protocol="v2", source="file")
    for i in range(3):
        w.on_event(Final(f"line {i}", i * 1000, i * 1000 + 500))
        assert [e.text for e in tr.finals(read_transcript(w.path))] == [f"line {j}" for j in range(i + 1)]
    w.close()


def test_finals_are_fsynced_promptly(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(tr.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    w = TranscriptWriter(tmp_path, protocol="v3")
    synced.clear()
    w.on_event(Final("durable", 0, 10))
    deadline = time.monotonic() + 10
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert synced, "no fsync after a final"
    w.close()


def test_unicode_and_lone_surrogates_round_trip(tmp_path):
    texts = ["Añejo façade — 日本語 🎉", "broken \ud800 surrogate", 'quote " and \\ backslash\nnewline']
    w = TranscriptWriter(tmp_path, protocol="v3")
    for i, t in enumerate(texts):
        w.on_event(Final(t, i, i + 1))
    w.close()
    assert [e.text for e in tr.finals(read_transcript(w.path))] == texts
    assert "Añejo" in w.path.read_text(encoding="utf-8")  # human-readable, not \u-escaped


def test_reader_tolerates_a_torn_last_line_and_junk(tmp_path, caplog):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.on_event(Final("kept one", 0, 10))
    w.on_event(Final("kept two", 10, 20))
    w.close()
    with open(w.path, "ab") as fh:
        fh.write(b'[1, 2]\n{"type": "mystery"}\nnot json\n\xff\xfe\n')
        fh.write(b'{"type":"final","text":"torn')
    entries = read_transcript(w.path)
    assert [e.text for e in tr.finals(entries)] == ["kept one", "kept two"]
    assert "incomplete last line" in caplog.text


def test_reader_survives_wrong_field_types(tmp_path):
    p = tmp_path / "odd.jsonl"
    p.write_text('{"type":"header","started":"yesterday"}\n'
                 '{"type":"final","text":5,"audio_start":"x","audio_end":NaN,"wall":true}\n'
                 '{"type":"gap","start_ms":null,"duration_ms":1e400}\n', encoding="utf-8")
    entries = read_transcript(p)
    assert [e.kind for e in entries] == ["header", "final", "gap"]
    assert entries[1].text == "" and entries[1].audio_end == 0 and entries[2].duration_ms == 0


def test_concurrent_writers_lose_and_tear_nothing(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    def work(n):
        for i in range(200):
            w.on_event(Final(f"t{n}-{i} " + "x" * 50, i, i + 1), f"src{n}")
    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    got = [e.text.split()[0] for e in tr.finals(read_transcript(w.path))]
    assert len(got) == 1200 and len(set(got)) == 1200
    for n in range(6):  # each thread's own order is preserved
        mine = [g for g in got if g.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(200)]
    assert w.finals_written == 1200


def test_close_is_idempotent_and_late_events_do_not_raise(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.close()
    w.close()
    w.on_event(Final("late", 0, 1))
    assert [r["type"] for r in lines_of(w.path)] == ["header", "end"]


def test_disk_error_is_reported_and_retried_without_loss(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    real_file = w._file

    class Failing:
        fails = 1
        def write(self, data):
            if self.fails:
                self.fails -= 1
                raise OSError(28, "No space left on device")
            return real_file.write(data)
        def __getattr__(self, name):
            return getattr(real_file, name)

    w._file = Failing()
    w.on_event(Final("first", 0, 1))  # must not raise
    assert w.error and "No space left" in w.error and str(w.path) in w.error
    w.on_event(Final("second", 1, 2))
    assert w.error is None
    w._file = real_file
    w.close()
    assert [e.text for e in tr.finals(read_transcript(w.path))] == ["first", "second"]


def test_short_write_leaves_a_skippable_fragment_and_the_full_line(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    real_file = w._file

    class Short:
        once = True
        def write(self, data):
            if self.once:
                self.once = False
                return real_file.write(data[:7])
            return real_file.write(data)
        def __getattr__(self, name):
            return getattr(real_file, name)

    w._file = Short()
    w.on_event(Final("whole", 0, 1))
    assert w.error
    w.on_event(Final("next", 1, 2))
    w._file = real_file
    w.close()
    assert [e.text for e in tr.finals(read_transcript(w.path))] == ["whole", "next"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_are_private(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.close()
    assert (w.path.stat().st_mode & 0o777) == 0o600


def test_two_writers_in_the_same_second_get_distinct_files(tmp_path):
    a = TranscriptWriter(tmp_path, protocol="v3", clock=lambda: 1_700_000_000.0)
    b = TranscriptWriter(tmp_path, protocol="v3", clock=lambda: 1_700_000_000.0)
    assert a.path != b.path
    a.close()
    b.close()


def test_list_sessions_newest_first_with_summaries(tmp_path):
    old = TranscriptWriter(tmp_path, protocol="v2", source="mic", clock=lambda: 1_600_000_000.0)
    old.on_event(Final("From long ago " + "word " * 30, 0, 1))
    old.close()
    new = TranscriptWriter(tmp_path, protocol="v3", source="both", clock=lambda: 1_700_000_000.0)
    new.on_event(Final("Recent", 0, 1))
    new.on_event(Gap(1, 2000, "connection lost"))
    new.on_event(Final("Recent two", 2001, 2500))
    new.close()
    (tmp_path / "notes.txt").write_text("not a transcript")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "garbage.jsonl").write_bytes(b"\x00\x01")
    infos = list_sessions(tmp_path)
    assert [i.path for i in infos] == [new.path, old.path]
    assert (infos[0].protocol, infos[0].source, infos[0].finals, infos[0].gaps) == ("v3", "both", 2, 1)
    assert infos[0].started == 1_700_000_000.0 and infos[0].preview == "Recent"
    assert len(infos[1].preview) <= 80 and infos[1].preview.endswith("…")
    assert list_sessions(tmp_path / "missing") == []


def test_prune_deletes_only_old_transcripts(tmp_path):
    now = time.time()
    files = {}
    for name, age_days in (("a", 40), ("b", 10), ("c", 31)):
        w = TranscriptWriter(tmp_path, protocol="v3")
        w.close()
        os.utime(w.path, (now - age_days * 86400, now - age_days * 86400))
        files[name] = w.path
    other = tmp_path / "keep-me.txt"
    other.write_text("x")
    os.utime(other, (now - 400 * 86400,) * 2)
    assert prune(tmp_path, 0) == 0
    assert prune(tmp_path, 30, keep=[files["c"]]) == 1
    assert not files["a"].exists() and files["b"].exists() and files["c"].exists() and other.exists()
    assert prune(tmp_path, 30) == 1 and not files["c"].exists()
    assert prune(tmp_path / "missing", 30) == 0


_CHILD = r"""
import sys, time
from pathlib import Path
from app.core.events import Final
from app.core.transcript import TranscriptWriter
w = TranscriptWriter(Path(sys.argv[1]), protocol="v3", source="file")
print(w.path, flush=True)
i = 0
while True:
    w.on_event(Final(f"final number {i} " + "padding " * 40, i * 10, i * 10 + 5))
    print(i, flush=True)
    i += 1
"""


def test_sigkill_mid_write_leaves_a_readable_file(tmp_path):
    """Kill a process that writes as fast as it can: every acknowledged final is on disk."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    path = Path(proc.stdout.readline().strip())
    acknowledged = -1
    while acknowledged < 300:
        acknowledged = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    texts = [e.text for e in tr.finals(read_transcript(path))]
    assert len(texts) >= acknowledged + 1
    assert texts == [f"final number {i} " + "padding " * 40 for i in range(len(texts))]


def test_a_malformed_event_is_logged_not_raised(tmp_path, caplog):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.on_event(Final("bad offsets", "soon", None))
    w.on_event(Final("good", 0, 1))
    w.close()
    assert [e.text for e in tr.finals(read_transcript(w.path))] == ["good"]
    assert "could not record" in caplog.text


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(), st.integers(0, 10**9), st.integers(0, 10**9),
                          st.sampled_from(["mic", "system", "", "ünï\n<label>"])), max_size=15))
def test_any_finals_round_trip_exactly(tmp_path_factory, finals_in):
    d = tmp_path_factory.mktemp("rt")
    w = TranscriptWriter(d, protocol="v3")
    for text, a, b, src in finals_in:
        w.on_event(Final(text, a, b), src)
    w.close()
    expected = [(t, a, b, s) for t, a, b, s in finals_in if t.strip()]
    got = [(e.text, e.audio_start, e.audio_end, e.source) for e in tr.finals(read_transcript(w.path))]
    assert got == expected


def test_session_summaries_follow_file_changes(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3")
    w.on_event(Final("one", 0, 1))
    assert tr.session_info(w.path).finals == 1
    w.on_event(Final("two", 1, 2))          # the file grew: the summary is recomputed
    assert tr.session_info(w.path).finals == 2
    w.close()
    w.path.unlink()
    assert tr.session_info(w.path) is None
