"""TXT / SRT / WebVTT export: exact output for known input, and properties for any input."""

from __future__ import annotations

import html
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import export as ex
from app.core.events import Final, Gap
from app.core.transcript import Entry, TranscriptWriter, read_transcript


def final(text, start, end, source="", wall=0.0):
    return Entry("final", wall=wall, source=source, text=text, audio_start=start, audio_end=end)


def gap(start, duration, reason="connection lost", wall=0.0):
    return Entry("gap", wall=wall, start_ms=start, duration_ms=duration, reason=reason)


# ---------------------------------------------------------------------------- known output

def test_srt_exact():
    entries = [final("Hello there.", 250, 1900), final("Second line", 3_723_004, 3_725_500)]
    assert ex.to_srt(entries) == (
        "1\n00:00:00,250 --> 00:00:01,900\nHello there.\n\n"
        "2\n01:02:03,004 --> 01:02:05,500\nSecond line\n")


def test_vtt_exact_with_escaping_voices_and_gap_note():
    entries = [final("a < b & c > d --> e", 0, 1000, "mic"), gap(1000, 2500, "network --> lost"),
               final("from the <speaker>", 3500, 4200, "system")]
    assert ex.to_vtt(entries) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\n<v mic>a &lt; b &amp; c &gt; d --&gt; e\n\n"
        "NOTE gap of 2.5 s at 00:00:01.000 (network → lost)\n\n"
        "00:00:03.500 --> 00:00:04.200\n<v system>from the &lt;speaker&gt;\n")


def test_labels_automatic_only_with_several_sources():
    one = [final("x", 0, 10, "mic"), final("y", 20, 30, "mic")]
    assert "mic" not in ex.to_srt(one) and "mic" not in ex.to_vtt(one)
    assert "mic: x" in ex.to_srt(one, labels=True)
    two = [final("x", 0, 10, "mic"), final("y", 20, 30, "system")]
    assert "mic: x" in ex.to_srt(two) and "system: y" in ex.to_srt(two)
    assert "<v mic>x" in ex.to_vtt(two)
    assert "mic" not in ex.to_srt(two, labels=False)


def test_srt_has_no_blank_lines_or_arrows_in_a_cue():
    out = ex.to_srt([final("first\n\n\n  \nsecond\r\nthird --> fourth", 0, 10)])
    assert out == "1\n00:00:00,000 --> 00:00:00,010\nfirst\nsecond\nthird → fourth\n"


def test_overlaps_are_clamped_and_times_made_valid():
    cues = ex.build_cues([final("a", 0, 2000), final("b", 1500, 1800), final("c", -50, -10),
                          final("d", 5000, 4000), final("   ", 6000, 7000)])
    # sorted by start (c: -50 → 0, tie with a broken by file order), then each cue starts no
    # earlier than the previous one ended and lasts at least 1 ms; the blank final is dropped
    assert [(c.lines[0], c.start_ms, c.end_ms) for c in cues] == [
        ("a", 0, 2000), ("c", 2000, 2001), ("b", 2001, 2002), ("d", 5000, 5001)]


def test_a_restarted_timeline_continues_after_the_previous_one():
    cues = ex.build_cues([final("a", 60_000, 62_000), final("b", 63_000, 64_000),
                          final("new run", 500, 1500), final("next", 2000, 2500)])
    assert [(c.start_ms, c.end_ms) for c in cues] == [
        (60_000, 62_000), (63_000, 64_000), (64_000, 65_000), (65_500, 66_000)]


def test_txt_lists_finals_and_gaps_with_wall_clock():
    t0 = time.mktime((2026, 3, 4, 9, 15, 0, 0, 0, -1))
    entries = [Entry("header", wall=t0), final("Good morning.", 0, 900, "mic", t0 + 2),
               gap(900, 4200, "connection lost", t0 + 7), final("Back again.", 5100, 6000, "mic", t0 + 8)]
    assert ex.to_txt(entries) == ("Transcript started 2026-03-04 09:15:00\n"
                                  "[09:15:02] Good morning.\n"
                                  "[09:15:07] (no captions for 4.2 s — connection lost)\n"
                                  "[09:15:08] Back again.\n")
    assert ex.to_txt([]) == ""


def test_export_from_a_transcript_file_round_trip(tmp_path):
    w = TranscriptWriter(tmp_path, protocol="v3", source="mic")
    w.on_event(Final("One.", 0, 800))
    w.on_event(Gap(800, 3000, "connection lost"))
    w.on_event(Final("Two.", 3800, 4500))
    w.close()
    entries = read_transcript(w.path)
    for fmt in ("txt", "srt", "vtt"):
        out = ex.export(entries, tmp_path / f"out.{fmt}")
        text = out.read_text(encoding="utf-8")
        assert "One." in text and "Two." in text
    assert (tmp_path / "out.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:00,800\nOne.")
    assert (tmp_path / "out.vtt").read_text().startswith("WEBVTT\n")
    assert ex.export(entries, tmp_path / "named.data", "SRT").read_text().startswith("1\n")


def test_export_rejects_unknown_format_and_leaves_no_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="txt, srt or vtt"):
        ex.export([final("x", 0, 1)], out / "out.docx")
    assert list(out.iterdir()) == []


def test_failed_export_keeps_the_previous_file(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "out.srt"
    target.write_text("previous good export")
    def boom(src, dst):
        raise OSError("disk went away")
    from app.core import private_files
    monkeypatch.setattr(private_files.os, "replace", boom)
    with pytest.raises(OSError, match="disk went away"):
        ex.export([final("x", 0, 1)], target)
    assert target.read_text() == "previous good export"
    assert [p.name for p in target.parent.iterdir()] == ["out.srt"]


def test_lone_surrogates_do_not_break_export(tmp_path):
    ex.export([final("bad \ud800 text", 0, 10)], tmp_path / "x.vtt")
    assert "bad" in (tmp_path / "x.vtt").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- independent parsers

SRT_TIME = r"(\d{2,}):([0-5]\d):([0-5]\d),(\d{3})"
VTT_TIME = r"(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})"


def _ms(groups) -> int:
    h, m, s, ms = map(int, groups)
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def parse_srt(text: str) -> list[tuple[int, int, list[str]]]:
    assert text == "" or text.endswith("\n")
    cues = []
    blocks = [b for b in text.split("\n\n")] if text else []
    for number, block in enumerate(blocks, start=1):
        lines = block.rstrip("\n").split("\n")
        assert lines[0] == str(number), block
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, lines[1]
        body = lines[2:]
        assert body and all(line.strip() for line in body), "blank line inside a cue"
        assert not any("-->" in line for line in body)
        cues.append((_ms(m.groups()[:4]), _ms(m.groups()[4:]), body))
    return cues


def parse_vtt(text: str) -> tuple[list[tuple[int, int, list[str]]], list[str]]:
    assert text.startswith("WEBVTT\n\n") or text == "WEBVTT\n"
    cues, notes = [], []
    for block in text[len("WEBVTT\n\n"):].split("\n\n"):
        if not block:
            continue
        lines = block.rstrip("\n").split("\n")
        assert all(line.strip() for line in lines), "blank line inside a block"
        if lines[0].startswith("NOTE"):
            assert "-->" not in block
            notes.append(block)
            continue
        m = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", lines[0])
        assert m, lines[0]
        body = lines[1:]
        assert body and not any("-->" in line for line in body)
        for i, line in enumerate(body):
            if i == 0 and line.startswith("<v "):
                tag_end = line.index(">")
                assert "<" not in line[1:tag_end] and line[3:tag_end].strip()
                line = line[tag_end + 1:]
            assert "<" not in line and ">" not in line
            assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", line), line
        cues.append((_ms(m.groups()[:4]), _ms(m.groups()[4:]), body))
    return cues, notes


def _strip_voice(line: str) -> str:
    return line[line.index(">") + 1:] if line.startswith("<v ") else line


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60) | st.sampled_from(
    ["-->", "a --> b", "<b>bold</b>", "&amp;", "line\n\nbreak", "\r\n", "  ", "1", "WEBVTT", "NOTE x"])
sources = st.sampled_from(["", "mic", "system", "file", "odd <label> & -->", "two\nlines"])
times = st.integers(min_value=-10_000, max_value=400_000_000)
finals_st = st.builds(final, texts, times, times, sources)
gaps_st = st.builds(gap, times, st.integers(0, 10_000_000), texts)
entries_st = st.lists(finals_st | gaps_st, max_size=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries_st, st.sampled_from([None, True, False]))
def test_srt_is_always_valid_and_monotonic(entries, labels):
    cues = parse_srt(ex.to_srt(entries, labels=labels))
    expected = [e for e in entries if e.kind == "final" and ex.clean_lines(e.text)]
    assert len(cues) == len(expected)
    previous_end = 0
    for start, end, _ in cues:
        assert 0 <= previous_end <= start < end
        previous_end = end
    if labels is False:
        got = sorted(tuple(body) for _, _, body in cues)
        want = sorted(tuple(l.replace("-->", "→") for l in ex.clean_lines(e.text)) for e in expected)
        assert got == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries_st, st.sampled_from([None, True, False]))
def test_vtt_is_always_valid_monotonic_and_text_survives_escaping(entries, labels):
    cues, notes = parse_vtt(ex.to_vtt(entries, labels=labels))
    expected = [e for e in entries if e.kind == "final" and ex.clean_lines(e.text)]
    assert len(cues) == len(expected)
    assert len(notes) == sum(1 for e in entries if e.kind == "gap")
    previous_end = 0
    for start, end, _ in cues:
        assert 0 <= previous_end <= start < end
        previous_end = end
    got = sorted(tuple(html.unescape(_strip_voice(l) if i == 0 else l) for i, l in enumerate(body))
                 for _, _, body in cues)
    want = sorted(ex.clean_lines(e.text) for e in expected)
    assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 5000), st.integers(0, 3000)),
                min_size=1, max_size=30))
def test_well_formed_single_source_keeps_order_and_times(steps):
    """Increasing, non-overlapping finals (what the pipeline produces) keep their exact times."""
    entries, t = [], 0
    for i, (pause, length, _) in enumerate(steps):
        start, t = t + pause, t + pause + length
        entries.append(final(f"utterance {i}", start, t))
    cues = ex.build_cues(entries)
    assert [(c.start_ms, c.end_ms, c.lines[0]) for c in cues] == [
        (e.audio_start, e.audio_end, e.text) for e in entries]


@given(st.integers(min_value=-5, max_value=10**12))
def test_timestamps_round_trip(ms):
    for sep, pattern in ((",", SRT_TIME), (".", VTT_TIME)):
        m = re.fullmatch(pattern, ex.format_timestamp(ms, sep))
        assert m and _ms(m.groups()) == max(0, ms)


@given(texts)
def test_txt_is_one_line_per_final(text):
    out = ex.to_txt([final(text, 0, 1, wall=1_700_000_000.0)])
    cleaned = " ".join(ex.clean_lines(text))
    if cleaned:
        assert out.count("\n") == 1 and out.endswith(cleaned + "\n")
    else:
        assert out == ""
