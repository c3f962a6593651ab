"""Recognition flags and saved preferences → one run's options (shared by both fronts)."""

from types import SimpleNamespace

import pytest

from app.core import recognition_options as ro
from app.core.session_config import SessionConfig
from app.core.settings import DictStore, Settings


def args(**given):
    base = {dest: None for dest in ro.FLAG_KEYS}
    return SimpleNamespace(**{**base, **given})


def run(config, saved=None, **flags):
    settings = Settings(DictStore(saved or {}))
    given = ro.overrides_from_args(args(**flags))
    return ro.apply(config, lambda k: given[k] if k in given else settings.get(k), given.__contains__)


def test_flags_beat_saved_values():
    config, notes = run(SessionConfig(speech_model="universal-3-5-pro"),
                        {"recognition/prompt": "Saved topic", "recognition/mode": "balanced"},
                        prompt="Flag topic", language="en, es", speaker_labels=True, max_speakers=2)
    assert (config.prompt, config.mode, config.language_codes) == ("Flag topic", "balanced", ("en", "es"))
    assert (config.speaker_labels, config.max_speakers) == (True, 2) and notes == []


def test_a_flag_the_model_lacks_is_an_error_a_saved_one_a_notice():
    with pytest.raises(ValueError, match="does not label speakers"):
        run(SessionConfig(speech_model="whisper-rt"), speaker_labels=True)
    config, notes = run(SessionConfig(speech_model="whisper-rt"), {"recognition/speaker_labels": True})
    assert not config.speaker_labels and "does not label speakers" in notes[0]


def test_max_speakers_needs_labels_and_languages_must_be_codes():
    with pytest.raises(ValueError, match="needs --speaker-labels"):
        run(SessionConfig(), max_speakers=3)
    config, _ = run(SessionConfig(), {"recognition/speaker_labels": True}, max_speakers=3)
    assert config.max_speakers == 3
    with pytest.raises(ValueError, match="not a language code"):
        run(SessionConfig(), language="english")
    with pytest.raises(ValueError, match="at least one"):
        run(SessionConfig(), language=" ,")


def test_v2_and_offline_engine():
    with pytest.raises(ValueError, match="v3"):
        run(SessionConfig(protocol="v2"), language_detection=True)
    config, notes = run(SessionConfig(engine="local"), {"recognition/speaker_labels": True})
    assert not config.speaker_labels and "offline engine" in notes[0]
