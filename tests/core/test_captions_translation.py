"""Translations on the overlay: under their originals, or in their place, with time passed in."""

from __future__ import annotations

import pytest

from app.core.captions import CaptionConfig, CaptionModel


def model(mode="both", lines=6, width=60, **kw):
    return CaptionModel(CaptionConfig(lines=lines, translation=mode, clear_after_s=0, **kw),
                        width=width)


def texts(m):
    return [line.text for line in m.lines()]


def kinds(m):
    return [{r.kind for r in line.runs} for line in m.lines()]


def test_translations_arriving_out_of_order_go_under_the_right_captions():
    m = model()
    m.on_final("mic", "Good morning.", 0.0, final_id=1)
    m.on_final("mic", "Let us begin.", 0.5, final_id=2)
    assert texts(m) == ["Good morning. Let us begin."]
    assert m.on_translation(2, "Empecemos.", 0.8)
    assert texts(m) == ["Good morning. Let us begin.", "Empecemos."]
    assert m.on_translation(1, "Buenos días.", 1.0)
    assert texts(m) == ["Good morning.", "Buenos días.", "Let us begin.", "Empecemos."]
    assert kinds(m) == [{"final"}, {"translation"}, {"final"}, {"translation"}]


def test_the_speaker_is_named_once_and_a_new_speaker_after_a_translation_is_named():
    m = model()
    m.on_final("mic", "Hello.", 0.0, speaker="A", final_id=1)
    m.on_translation(1, "Hola.", 0.1)
    m.on_final("mic", "How are you?", 0.2, speaker="A", final_id=2)
    m.on_final("mic", "Fine.", 0.3, speaker="A", final_id=3)
    m.on_final("mic", "Good.", 0.4, speaker="B", final_id=4)
    m.on_translation(4, "Bien.", 0.5)
    assert texts(m) == ["Speaker A: Hello.", "Hola.", "How are you? Fine.",
                        "Speaker B: Good.", "Bien."]


def test_a_partial_after_a_translated_final_shows_below_the_translation():
    m = model()
    m.on_final("mic", "One.", 0.0, final_id=1)
    m.on_translation(1, "Uno.", 0.1)
    m.on_partial("mic", "two thr", 0.2)
    assert texts(m) == ["One.", "Uno.", "two thr"]


def test_a_translation_for_a_final_no_longer_kept_is_ignored():
    m = model()
    m.on_final("mic", "One.", 0.0, final_id=1)
    assert not m.on_translation(99, "Nada.", 0.1)
    assert not m.on_translation(1, "   ", 0.1)
    assert texts(m) == ["One."]


def test_long_translations_wrap_with_their_own_measure():
    m = model(width=20)
    m.set_measure(len, translation=lambda t: 2 * len(t))
    m.on_final("mic", "short words here ok", 0.0, final_id=1)
    m.on_translation(1, "palabras cortas aqui", 0.1)
    lines = m.lines()
    assert all(2 * len(line.text) <= 20 for line in lines[1:])
    assert " ".join(line.text for line in lines[1:]) == "palabras cortas aqui"


def test_translation_only_holds_the_original_until_its_translation():
    m = model("translation")
    m.on_partial("mic", "good morn", 0.0)
    assert texts(m) == []                     # partials are the language not followed
    m.on_final("mic", "Good morning.", 0.2, final_id=1)
    assert texts(m) == [] and m.held() == 1
    assert m.seconds_until_release(1.0) == pytest.approx(1.7)
    assert not m.tick(1.0)
    m.on_translation(1, "Buenos días.", 1.2)
    assert texts(m) == ["Buenos días."] and m.held() == 0
    assert kinds(m) == [{"final"}]


def test_translation_only_shows_the_original_when_the_translation_is_missing():
    m = model("translation")
    m.on_final("mic", "Good morning.", 0.0, final_id=1)
    m.on_final("mic", "Second.", 0.5, final_id=2)
    m.on_translation(2, "Segundo.", 0.6)
    assert texts(m) == ["Segundo."]
    assert m.tick(2.5)                        # the wait is over: nothing is lost from view
    assert texts(m) == ["Good morning. Segundo."]
    # A late translation still replaces the original.
    m.on_translation(1, "Buenos días.", 4.0)
    assert texts(m) == ["Buenos días. Segundo."]


def test_auto_clear_never_hides_a_caption_that_is_still_held():
    m = CaptionModel(CaptionConfig(lines=3, translation="translation", clear_after_s=1,
                                   translation_wait_s=2.5), width=60)
    m.on_final("mic", "Hello.", 0.0, final_id=1)
    assert not m.tick(1.5) and m.held() == 1
    assert m.tick(2.5) and texts(m) == ["Hello."]
    assert m.tick(3.6) and texts(m) == []      # then the usual auto-clear


def test_without_translation_nothing_changes():
    m = model("")
    m.on_final("mic", "Hello.", 0.0, final_id=1)
    assert m.held() == 0
    m.on_translation(1, "Hola.", 0.1)          # a stray translation is not shown
    assert texts(m) == ["Hello."]


def test_bad_translation_mode_is_refused():
    with pytest.raises(ValueError, match="Translation display"):
        CaptionConfig(translation="spanish")
