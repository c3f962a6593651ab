"""Speaker display names, renames, revisions."""

import threading

import pytest

from app.core.speakers import SpeakerNames, clean_name, label_key


def test_default_names_and_unknown_shows_none():
    names = SpeakerNames()
    assert names.display("A") == "Speaker A"
    assert names.display("UNKNOWN") is None and names.display(None) is None and names.display("") is None


def test_rename_is_kept_and_forms_of_a_label_agree():
    names = SpeakerNames()
    assert names.rename("a", "  Dana\tRuiz ") == "Dana Ruiz"
    assert names.display("A") == "Dana Ruiz"
    names.rename("Speaker B", "Óscar")
    assert names.display("B") == "Óscar"
    assert names.renames == {"A": "Dana Ruiz", "B": "Óscar"}
    names.forget("A")
    assert names.display("A") == "Speaker A"


@pytest.mark.parametrize("label,name,words", [
    ("A", "   ", "empty"), ("A", "x" * 41, "40 characters"), ("UNKNOWN", "Dana", "labelled"),
    (None, "Dana", "labelled"),
])
def test_bad_renames_are_refused_in_plain_words(label, name, words):
    names = SpeakerNames()
    with pytest.raises(ValueError, match=words):
        names.rename(label, name)
    assert names.renames == {}


def test_names_are_one_clean_line():
    assert clean_name("Dana\nRuiz\u200b") == "Dana Ruiz"
    assert label_key(" b ") == "B" and label_key("Speaker UNKNOWN") is None


def test_with_both_sources_the_microphone_is_you():
    names = SpeakerNames(mic_is_you=True)
    assert names.display(None, "mic") == "You" and names.display("A", "mic") == "You"
    assert names.display("A", "system") == "Speaker A"
    names.note_final(1, None, "mic")
    assert names.revise(1, "B") is None                 # the microphone is never diarized


def test_revisions():
    names = SpeakerNames()
    names.note_final(7, "A", "system")
    assert names.revise(7, "A") is None
    assert names.revise(7, "C") == ("A", "C")
    assert names.label_of(7) == "C"
    assert names.revise(99, "B") is None


def test_history_is_bounded_and_thread_safe():
    names = SpeakerNames(history_limit=100)

    def work(base):
        for i in range(500):
            names.note_final(base + i, "A")
            names.display("A")

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names._finals) == 100
