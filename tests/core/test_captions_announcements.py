"""What screen readers are told: what the overlay shows, as it appears. In translation-only
mode that is the translation, or the original when the translation came too late."""

from app.core.captions import CaptionConfig, CaptionModel
from app.core.speakers import SpeakerNames


def model(mode: str = "", **kw) -> CaptionModel:
    return CaptionModel(CaptionConfig(lines=3, translation=mode, translation_wait_s=2.5, **kw),
                        width=80)


def test_each_final_is_announced_once_in_order():
    m = model()
    m.on_partial("mic", "the budget", 0.0)
    assert m.take_announcements() == []                 # partials are never announced
    m.on_final("mic", "The budget review starts at nine.", 0.1, final_id=1)
    m.on_final("mic", "Please send the slides.", 0.2, final_id=2)
    assert m.take_announcements() == ["The budget review starts at nine.",
                                      "Please send the slides."]
    assert m.take_announcements() == []


def test_translation_only_announces_the_translation_not_the_original():
    m = model("translation")
    m.on_final("mic", "Good morning, everyone.", 0.0, final_id=1)
    assert m.take_announcements() == []                 # nothing on screen yet: held back
    m.on_translation(1, "Buenos días a todos.", 0.4)
    assert m.visible_text().strip() == "Buenos días a todos."
    assert m.take_announcements() == ["Buenos días a todos."]


def test_translation_only_announces_the_original_when_the_translation_is_late():
    m = model("translation")
    m.on_final("mic", "Good morning, everyone.", 0.0, final_id=1)
    assert not m.tick(1.0) and m.take_announcements() == []
    assert m.tick(2.6)                                   # the wait is over: the original shows
    assert "Good morning, everyone." in m.visible_text()
    assert m.take_announcements() == ["Good morning, everyone."]
    m.on_translation(1, "Buenos días a todos.", 3.0)      # late: it replaces the original
    assert "Buenos días a todos." in m.visible_text()
    assert m.take_announcements() == ["Buenos días a todos."]
    m.on_translation(1, "Buenos días a todos.", 3.1)      # the same again: nothing new
    assert m.take_announcements() == []


def test_out_of_order_translations_are_announced_as_they_appear():
    m = model("translation")
    m.on_final("mic", "One.", 0.0, final_id=1)
    m.on_final("mic", "Two.", 0.5, final_id=2)
    m.on_translation(2, "Dos.", 0.6)
    m.on_translation(1, "Uno.", 0.9)
    assert m.take_announcements() == ["Dos.", "Uno."]


def test_the_speaker_of_each_caption_is_named():
    names = SpeakerNames()
    m = CaptionModel(CaptionConfig(lines=3, translation="translation", translation_wait_s=2.5),
                     width=80, names=names)
    m.on_final("mic", "Hello.", 0.0, speaker="A", final_id=1)
    m.on_final("mic", "Hi there.", 0.1, speaker="B", final_id=2)
    m.on_translation(1, "Hola.", 0.2)
    m.on_translation(2, "Qué tal.", 0.3)
    assert m.take_announcements() == ["Speaker A: Hola.", "Speaker B: Qué tal."]


def test_both_mode_announces_the_original_as_before():
    m = model("both")
    m.on_final("mic", "Good morning.", 0.0, final_id=1)
    m.on_translation(1, "Buenos días.", 0.2)
    assert m.take_announcements() == ["Good morning."]
