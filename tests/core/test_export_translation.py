"""Bilingual and translation-only exports, read back by independent parsers (srt, webvtt-py)."""

from __future__ import annotations

import html
import io

import pytest
import srt
import webvtt

from app.core import export
from app.core.events import Final, Translation
from app.core.transcript import TranscriptWriter, read_transcript


@pytest.fixture
def entries(tmp_path):
    """A transcript where translations arrived late and out of order, one never came."""
    one = Final("Good morning, everyone.", 0, 1500, speaker="A")
    two = Final("We ship <v2> on 3 May & then -->", 1600, 3200, speaker="B")
    three = Final("Thanks.", 3300, 3900, speaker="A")
    with TranscriptWriter(tmp_path, protocol="v3", source="mic", final_ids=True) as writer:
        for event in (one, two, Translation(two.id, "es", "Enviamos <v2> el 3 de mayo & luego -->"),
                      three, Translation(one.id, "es", "Buenos días a todos.")):
            writer.on_event(event)
        path = writer.path
    return read_transcript(path)


def test_bilingual_srt_has_both_lines_in_each_cue(entries):
    subs = list(srt.parse(export.to_srt(entries)))
    assert [s.content.split("\n") for s in subs] == [
        ["Speaker A: Good morning, everyone.", "Buenos días a todos."],
        ["Speaker B: We ship <v2> on 3 May & then →", "Enviamos <v2> el 3 de mayo & luego →"],
        ["Speaker A: Thanks."]]
    assert [s.start.total_seconds() for s in subs] == [0.0, 1.6, 3.3]


def test_translation_only_srt_keeps_untranslated_captions(entries):
    subs = list(srt.parse(export.to_srt(entries, content="translation")))
    assert [s.content for s in subs] == ["Speaker A: Buenos días a todos.",
                                         "Speaker B: Enviamos <v2> el 3 de mayo & luego →",
                                         "Speaker A: Thanks."]


def test_original_only_leaves_translations_out(entries):
    subs = list(srt.parse(export.to_srt(entries, content="original")))
    assert [s.content for s in subs] == ["Speaker A: Good morning, everyone.",
                                         "Speaker B: We ship <v2> on 3 May & then →",
                                         "Speaker A: Thanks."]


def test_bilingual_vtt_parses_and_keeps_both_lines(entries):
    text = export.to_vtt(entries)
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    assert len(captions) == 3
    assert "<v2>" not in text          # escaped: the parser sees text, not a tag
    assert captions[0].text.split("\n") == ["Good morning, everyone.", "Buenos días a todos."]
    assert html.unescape(captions[1].text).split("\n") == ["We ship <v2> on 3 May & then -->",
                                            "Enviamos <v2> el 3 de mayo & luego -->"]
    assert captions[1].voice == "Speaker B"
    assert "<lang es>Buenos días a todos.</lang>" in text
    assert captions[2].text == "Thanks."


def test_translation_only_vtt(entries):
    captions = webvtt.from_buffer(io.StringIO(export.to_vtt(entries, content="translation"))).captions
    assert [html.unescape(c.text) for c in captions] == ["Buenos días a todos.",
                                          "Enviamos <v2> el 3 de mayo & luego -->", "Thanks."]


def test_txt_puts_the_translation_under_its_caption(entries):
    lines = export.to_txt(entries).splitlines()
    i = next(n for n, line in enumerate(lines) if "Good morning" in line)
    assert lines[i + 1] == "    Buenos días a todos."


def test_unknown_content_is_a_plain_error(entries, tmp_path):
    with pytest.raises(ValueError, match="both, original or translation"):
        export.export(entries, tmp_path / "x.srt", content="spanish")
    assert not (tmp_path / "x.srt").exists()


def test_has_translations(entries):
    assert export.has_translations(entries)
    assert not export.has_translations([e for e in entries if e.kind != "translation"])
