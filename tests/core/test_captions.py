"""Caption layout: partial replaced in place, line limit, wrapping, stable mode, auto-clear."""

import pytest
from hypothesis import given, settings, strategies as st

from app.core.captions import CaptionConfig, CaptionModel


def model(**kw):
    width = kw.pop("width", 20)
    return CaptionModel(CaptionConfig(**kw), measure=len, width=width)


def test_partial_is_replaced_in_place_by_its_final():
    m = model(lines=3, width=40)
    m.on_final("mic", "First sentence.", 0)
    m.on_partial("mic", "second", 1)
    m.on_partial("mic", "second sent", 1.2)
    assert m.visible_text() == "First sentence. second sent"
    kinds = [r.kind for r in m.lines()[0].runs]
    assert kinds == ["final", "partial"]
    m.on_final("mic", "Second sentence.", 1.5)
    assert m.visible_text() == "First sentence. Second sentence."
    assert [r.kind for r in m.lines()[0].runs] == ["final"]


def test_no_duplicated_text_over_many_utterances():
    m = model(lines=8, width=1000)
    for i in range(5):
        for n in range(1, 4):
            m.on_partial("mic", " ".join([f"w{i}"] * n), i + n / 10)
        m.on_final("mic", f"w{i} w{i} w{i}.", i + 0.5)
    assert m.visible_text() == " ".join(f"w{i} w{i} w{i}." for i in range(5))


def test_line_limit_keeps_newest_lines():
    m = model(lines=2, width=10)
    m.on_final("mic", "aaaa bbbb cccc dddd eeee ffff", 0)
    lines = [line.text for line in m.lines()]
    assert lines == ["cccc dddd", "eeee ffff"]


@pytest.mark.parametrize("n", range(1, 9))
def test_every_line_count_is_respected(n):
    m = model(lines=n, width=5)
    m.on_final("mic", " ".join(["word"] * 30), 0)
    assert len(m.lines()) == n


def test_line_count_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="1-8"):
        CaptionConfig(lines=0)
    with pytest.raises(ValueError, match="1-8"):
        CaptionConfig(lines=9)
    with pytest.raises(ValueError):
        CaptionConfig(clear_after_s=-1)


def test_long_word_breaks_by_characters():
    m = model(lines=4, width=4)
    m.on_final("mic", "abcdefghij", 0)
    assert [line.text for line in m.lines()] == ["abcd", "efgh", "ij"]


def test_wrapping_uses_injected_measure():
    # A measure where "w" is three times as wide as other letters.
    measure = lambda s: sum(3 if c == "w" else 1 for c in s)  # noqa: E731
    m = CaptionModel(CaptionConfig(lines=4), measure=measure, width=7)
    m.on_final("mic", "ww ab cd", 0)
    assert [line.text for line in m.lines()] == ["ww", "ab cd"]


def test_width_change_rewraps():
    m = model(lines=8, width=100)
    m.on_final("mic", "one two three four", 0)
    assert len(m.lines()) == 1
    rev = m.revision
    m.set_width(8)
    assert m.revision != rev
    assert [line.text for line in m.lines()] == ["one two", "three", "four"]


def test_stable_only_hides_partials_but_keeps_finals():
    m = model(lines=2, width=50, stable_only=True)
    m.on_final("mic", "Done.", 0)
    m.on_partial("mic", "in progress", 1)
    assert m.visible_text() == "Done."
    m.on_final("mic", "In progress now.", 2)
    assert m.visible_text() == "Done. In progress now."


def test_auto_clear_after_silence():
    m = model(clear_after_s=6, width=50)
    m.on_final("mic", "Hello there.", 10.0)
    assert m.seconds_until_clear(12.0) == pytest.approx(4.0)
    assert not m.tick(15.9)
    assert m.visible_text() == "Hello there."
    assert m.tick(16.0)
    assert m.visible_text() == ""
    assert m.seconds_until_clear(17) is None


def test_partial_updates_postpone_auto_clear():
    m = model(clear_after_s=2, width=50)
    m.on_final("mic", "a", 0)
    m.on_partial("mic", "b", 1.5)
    m.on_partial("mic", "b c", 3.0)
    assert not m.tick(4.5)
    assert m.tick(5.0)


def test_never_clear_when_zero():
    m = model(clear_after_s=0, width=50)
    m.on_final("mic", "Stays.", 0)
    assert not m.tick(10_000)
    assert m.visible_text() == "Stays."
    assert m.seconds_until_clear(5) is None


def test_labels_per_source_and_in_place_replacement_across_sources():
    m = CaptionModel(CaptionConfig(lines=4, show_labels=True), measure=len, width=60)
    m.on_partial("mic", "hello", 0)
    m.on_partial("system", "news at", 0.1)
    m.on_final("system", "News at nine.", 0.2)
    m.on_final("mic", "Hello everyone.", 0.3)
    # The mic utterance started first and keeps its place.
    assert [line.text for line in m.lines()] == ["Mic: Hello everyone.", "System: News at nine."]
    assert m.lines()[0].runs[0].kind == "label"


def test_labels_off_by_default():
    m = model(lines=2, width=60)
    m.on_final("mic", "Plain.", 0)
    assert m.visible_text() == "Plain."


def test_empty_final_closes_open_partial():
    m = model(width=50)
    m.on_partial("mic", "uh", 0)
    m.on_final("mic", "", 1)
    assert m.visible_text() == ""
    assert not m.has_partial()


def test_empty_partial_does_not_create_a_line():
    m = model(width=50)
    rev = m.revision
    m.on_partial("mic", "   ", 0)
    assert m.revision == rev and m.lines() == []


def test_drop_partials_for_one_source():
    m = model(lines=4, width=60)
    m.on_partial("mic", "half", 0)
    m.on_partial("system", "other", 0)
    m.drop_partials("mic")
    assert m.visible_text() == "other"
    m.drop_partials()
    assert m.visible_text() == ""


def test_whitespace_is_normalised():
    m = model(width=50)
    m.on_final("mic", "  two   spaces\n here ", 0)
    assert m.visible_text() == "two spaces here"
    assert m.last_final == "two spaces here"


def test_unchanged_partial_does_not_bump_revision():
    m = model(width=50)
    m.on_partial("mic", "same", 0)
    rev = m.revision
    m.on_partial("mic", "same", 1)
    assert m.revision == rev


words = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=12), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(finals=st.lists(words, min_size=1, max_size=6), width=st.integers(3, 40),
       lines=st.integers(1, 8))
def test_layout_properties(finals, width, lines):
    """Whatever arrives: no line wider than the width, never more lines than asked, and the
    visible text is always the tail of everything said, with nothing repeated."""
    m = model(lines=lines, width=width)
    everything = []
    for i, ws in enumerate(finals):
        for k in range(1, len(ws) + 1):
            m.on_partial("mic", " ".join(ws[:k]), i)
        m.on_final("mic", " ".join(ws), i)
        everything += ws
    shown = m.lines()
    assert 1 <= len(shown) <= lines
    assert all(len(line.text) <= width for line in shown)
    joined = "".join(line.text.replace(" ", "") for line in shown)
    assert "".join(everything).endswith(joined)


def test_words_win_over_the_label_when_both_cannot_fit():
    m = CaptionModel(CaptionConfig(lines=1, show_labels=True), measure=len, width=12)
    m.on_final("mic", "aaaaaaaa", 0)
    assert m.visible_text() == "aaaaaaaa"


def test_label_stays_visible_when_its_first_line_scrolls_out():
    m = CaptionModel(CaptionConfig(lines=2, show_labels=True), measure=len, width=20)
    m.on_final("system", "Earlier news.", 0)
    m.on_final("mic", "one two three four five six seven eight nine ten", 1)
    lines = [line.text for line in m.lines()]
    assert len(lines) == 2
    assert lines[0].startswith("Mic: ")
    assert lines[-1].endswith("nine ten")
    assert all(len(t) <= 20 for t in lines)
    assert m.lines()[0].runs[0].kind == "label"


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.tuples(st.sampled_from(["mic", "system"]), words), min_size=1, max_size=6),
       width=st.integers(20, 40), lines=st.integers(1, 8))
def test_labelled_layout_properties(texts, width, lines):
    """With labels on: never wider than the width, never more lines than asked, the first visible
    line always says who speaks, and the newest words are always on screen. (Width ≥ 20: a label
    and the longest word fit side by side.)"""
    m = CaptionModel(CaptionConfig(lines=lines, show_labels=True), measure=len, width=width)
    for i, (label, ws) in enumerate(texts):
        m.on_final(label, " ".join(ws), i)
    shown = m.lines()
    assert 1 <= len(shown) <= lines
    assert all(len(line.text) <= width for line in shown)
    assert shown[0].runs[0].kind == "label"
    assert shown[-1].text.endswith(texts[-1][1][-1][-(width // 2):])


# ---- speakers and languages --------------------------------------------------------------------
from app.core.speakers import SpeakerNames
from app.core.styles import speaker_colorer, style_from_values


def speaker_model(width=60, lines=6, **kw):
    return CaptionModel(CaptionConfig(lines=lines), measure=len, width=width, **kw)


def test_each_speaker_starts_a_named_paragraph():
    m = speaker_model()
    m.on_final("system", "Good morning.", 0, speaker="A", final_id=1)
    m.on_final("system", "How are you?", 1, speaker="A", final_id=2)
    m.on_final("system", "Fine, thanks.", 2, speaker="B", final_id=3)
    assert [line.text for line in m.lines()] == ["Speaker A: Good morning. How are you?",
                                                 "Speaker B: Fine, thanks."]
    assert m.lines()[0].runs[0].kind == "speaker" and m.lines()[0].runs[0].speaker == "A"


def test_unknown_shows_no_name_and_does_not_join_the_previous_speaker():
    m = speaker_model()
    m.on_final("system", "Hello.", 0, speaker="A", final_id=1)
    m.on_final("system", "Mm.", 1, speaker="UNKNOWN", final_id=2)
    m.on_final("system", "Right.", 2, speaker="A", final_id=3)
    assert [line.text for line in m.lines()] == ["Speaker A: Hello.", "Mm.", "Speaker A: Right."]


def test_renames_apply_to_what_is_on_screen():
    names = SpeakerNames()
    m = speaker_model(names=names)
    m.on_final("system", "Hi.", 0, speaker="A", final_id=1)
    before = m.revision
    names.rename("A", "Dana")
    m.names_changed()
    assert m.revision != before and m.visible_text() == "Dana: Hi."


def test_revision_moves_the_line_to_the_right_person():
    m = speaker_model()
    m.on_final("system", "One.", 0, speaker="A", final_id=10)
    m.on_final("system", "Two.", 1, speaker="A", final_id=11)
    assert m.on_revision(11, "B") is True
    assert [line.text for line in m.lines()] == ["Speaker A: One.", "Speaker B: Two."]
    assert m.speaker_of_last_final() == "Speaker B"
    assert m.on_revision(999, "C") is False


def test_partial_takes_the_final_speaker_and_joins_while_unlabelled():
    m = speaker_model()
    m.on_final("system", "First.", 0, speaker="A", final_id=1)
    m.on_partial("system", "and then", 1)
    assert m.visible_text() == "Speaker A: First. and then"
    m.on_final("system", "And then?", 2, speaker="B", final_id=2)
    assert [line.text for line in m.lines()] == ["Speaker A: First.", "Speaker B: And then?"]


def test_both_sources_mic_is_you():
    m = speaker_model(names=SpeakerNames(mic_is_you=True))
    m.on_final("mic", "I agree.", 0)
    m.on_final("system", "Good.", 1, speaker="A", final_id=2)
    assert [line.text for line in m.lines()] == ["You: I agree.", "Speaker A: Good."]


def test_language_tag_when_the_language_changes():
    m = speaker_model(width=80)
    m.on_final("system", "Hello.", 0, speaker="A", language="en", final_id=1)
    m.on_final("system", "Hola.", 1, speaker="B", language="es", final_id=2)
    m.on_final("system", "Qué tal.", 2, speaker="B", language="es", final_id=3)
    m.on_final("system", "Fine.", 3, speaker="A", language="en", final_id=4)
    assert [line.text for line in m.lines()] == ["Speaker A: Hello.", "Speaker B: [ES] Hola. Qué tal.",
                                                 "Speaker A: [EN] Fine."]
    assert [r.kind for r in m.lines()[1].runs][:2] == ["speaker", "language"]


def test_speaker_colours_reach_the_runs():
    style = style_from_values({})
    m = speaker_model(speaker_color=speaker_colorer(style))
    m.on_final("system", "Hi.", 0, speaker="A", final_id=1)
    m.on_partial("system", "so", 1)
    runs = m.lines()[0].runs
    assert runs[0].color == runs[1].color == "#ffff66"
    assert runs[-1].kind == "partial" and runs[-1].color is None


def test_no_speakers_no_change():
    m = speaker_model()
    m.on_final("mic", "Plain.", 0)
    assert m.visible_text() == "Plain." and m.lines()[0].runs[0].kind == "final"


def test_language_tag_is_never_left_at_a_line_end():
    m = speaker_model(width=24, lines=4)
    m.on_final("system", "Good morning all.", 0, speaker="A", language="en", final_id=1)
    m.on_final("system", "Hola.", 1, speaker="A", language="es", final_id=2)
    lines = [line.text for line in m.lines()]
    assert all(not t.endswith("[ES]") for t in lines) and any("[ES] Hola." in t for t in lines)


# ---- the wrap cache gives exactly what a fresh layout gives ------------------------------------
step = st.one_of(
    st.tuples(st.just("partial"), st.sampled_from(["mic", "system"]), words, st.sampled_from([None, "A", "B"])),
    st.tuples(st.just("final"), st.sampled_from(["mic", "system"]), words,
              st.sampled_from([None, "A", "B", "UNKNOWN"]), st.sampled_from([None, "en", "es"])),
    st.tuples(st.just("revise"), st.integers(1, 12), st.sampled_from(["A", "B", "C"])),
    st.tuples(st.just("rename"), st.sampled_from(["A", "B"]), st.sampled_from(["Dana", "Óscar Ruiz"])),
    st.tuples(st.just("width"), st.integers(5, 60)),
)


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=25), lines=st.integers(1, 6),
       labels=st.booleans())
def test_cached_layout_equals_a_fresh_layout(steps, lines, labels):
    names = SpeakerNames()
    m = CaptionModel(CaptionConfig(lines=lines, show_labels=labels), measure=len, width=20, names=names)
    log, final_id = [], 0
    for s in steps:
        if s[0] == "partial":
            m.on_partial(s[1], " ".join(s[2]), 0, speaker=s[3])
        elif s[0] == "final":
            final_id += 1
            m.on_final(s[1], " ".join(s[2]), 0, speaker=s[3], final_id=final_id, language=s[4])
        elif s[0] == "revise":
            m.on_revision(s[1], s[2])
        elif s[0] == "rename":
            names.rename(s[1], s[2])
            m.names_changed()
        else:
            m.set_width(s[1])
        log.append(s)
        fresh = CaptionModel(CaptionConfig(lines=lines, show_labels=labels), measure=len,
                             width=m._width, names=names)
        fid = 0
        for t in log:
            if t[0] == "partial":
                fresh.on_partial(t[1], " ".join(t[2]), 0, speaker=t[3])
            elif t[0] == "final":
                fid += 1
                fresh.on_final(t[1], " ".join(t[2]), 0, speaker=t[3], final_id=fid, language=t[4])
            elif t[0] == "revise":
                fresh.on_revision(t[1], t[2])
        assert m.lines() == fresh.lines()


def test_changed_rows_names_the_lines_a_partial_changed_or_asks_for_everything():
    from app.core.captions import changed_rows
    model = CaptionModel(CaptionConfig(lines=3, clear_after_s=0), measure=lambda t: 10.0 * len(t), width=400)
    model.on_final("mic", "First sentence is done.", 0)
    model.on_partial("mic", "and the next", 1)
    shown = [line.runs for line in model.lines()]
    model.on_partial("mic", "and the next one", 2)
    assert changed_rows(shown, model.lines()) == [len(shown) - 1]      # only the last line
    assert changed_rows(shown, model.lines()[:-1]) is None             # a line went: all moves
    assert changed_rows(None, model.lines()) is None and changed_rows(shown, []) is None
    assert changed_rows([line.runs for line in model.lines()], model.lines()) == []


def test_the_next_tick_is_the_clear_or_while_a_final_waits_for_its_translation_its_release():
    model = CaptionModel(CaptionConfig(lines=2, clear_after_s=6.0), measure=lambda t: 10.0 * len(t), width=400)
    assert model.seconds_until_tick(0.0) is None
    model.on_final("mic", "Shown now.", 10.0)
    assert model.seconds_until_tick(11.0) == pytest.approx(5.0)
    model.seconds_until_release = lambda now: 1.5                     # a held final
    model.held = lambda: 1
    assert model.seconds_until_tick(11.0) == 1.5
