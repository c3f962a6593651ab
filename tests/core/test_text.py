"""Server text made safe for a terminal: C0/C1 controls never reach plain-text output."""

from __future__ import annotations

import io

from hypothesis import given, strategies as st

from app.core.events import Final
from app.core.text import one_line, strip_controls
from app.headless import Output


def test_escape_sequences_and_line_breaks_are_removed():
    hostile = "caption\x1b]0;pwned\x07 one\x1b[2J\r\ntwo\x9b31m\x00\x7fend\ttab"
    clean = strip_controls(hostile)
    assert clean == "caption ]0;pwned  one [2J two 31m end tab"
    assert "\x1b" not in clean and "\n" not in clean and "\x9b" not in clean


def test_ordinary_unicode_is_untouched():
    text = "Añejo naïve café — 東京 🎤 O'Brien"
    assert strip_controls(text) == text


@given(st.text())
def test_no_control_character_survives(text):
    clean = strip_controls(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in clean)


def test_one_line_collapses_and_cuts():
    assert one_line("a\n\n b\x1b[0m", 200) == "a b [0m"
    assert len(one_line("x" * 500, 50)) == 50


def test_plain_headless_output_prints_one_clean_line_per_final():
    out = io.StringIO()
    Output(False, out, io.StringIO()).event("mic", Final("evil\x1b]2;title\x07\nsecond line", 0, 1))
    assert out.getvalue() == "evil ]2;title second line\n"


def test_json_headless_output_keeps_the_exact_text_escaped():
    out = io.StringIO()
    Output(True, out, io.StringIO()).event("mic", Final("a\x1bb\nc", 0, 1))
    line = out.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line and "\\u001b" in line
