"""Preferences: declared once, validated on load, page grouping, SessionConfig from values."""

import logging

import pytest

from app.core.session_config import CHUNK_LIMITS_MS
from app.core.run_plan import session_config
from app.core.settings import (LIVE_KEYS, PAGE_KEYS, PREF_BY_KEY, PREFS, RESTART_KEYS, DictStore,
                               Settings, defaults)


def test_every_pref_default_passes_its_own_validation():
    for pref in PREFS:
        assert pref.coerce(pref.default) == (tuple(pref.default) if pref.kind == "list"
                                              else pref.default), pref.key


def test_page_keys_are_declared_and_disjoint():
    seen = set()
    for page, keys in PAGE_KEYS.items():
        for key in keys:
            assert key in PREF_BY_KEY, key
            assert key not in seen, f"{key} on two pages"
            seen.add(key)
    assert "recognition/silence_ms" in PAGE_KEYS["silence"]
    assert set(PAGE_KEYS["connection"]) <= RESTART_KEYS
    assert "recognition/vocabulary" not in RESTART_KEYS
    assert LIVE_KEYS == {"recognition/vocabulary", "recognition/silence_ms"}
    assert not LIVE_KEYS & RESTART_KEYS
    assert set(PAGE_KEYS["audio"]) <= RESTART_KEYS and "credentials/api_key" in RESTART_KEYS
    assert "appearance/font_size" not in RESTART_KEYS | LIVE_KEYS


def test_appearance_page_covers_every_style_key():
    style_keys = {p.key for p in PREFS if p.key.startswith(("appearance/", "captions/"))}
    assert set(PAGE_KEYS["appearance"]) == style_keys


@pytest.mark.parametrize("key, raw, expected", [
    ("connection/sample_rate", "16000", 16000),          # INI strings in a new process
    ("captions/stable_only", "false", False),
    ("captions/stable_only", "true", True),
    ("recognition/vocabulary", "A", ("A",)),              # one-item list comes back bare
    ("recognition/vocabulary", ["A", "B"], ("A", "B")),
    ("recognition/vocabulary", "", ()),
    ("appearance/text_color", "#FFAA00", "#ffaa00"),
])
def test_ini_shaped_values_read_with_types(key, raw, expected):
    assert Settings(DictStore({key: raw})).get(key) == expected


@pytest.mark.parametrize("key, raw", [
    ("connection/sample_rate", "abc"),
    ("connection/sample_rate", "999999"),
    ("recognition/silence_ms", "-1"),
    ("recognition/silence_ms", "20001"),
    ("captions/stable_only", "maybe"),
    ("connection/protocol", "v9"),
    ("appearance/text_color", "red"),
    ("connection/server_url", ["a", "b"]),
    ("recognition/vocabulary", [1, 2]),
])
def test_corrupt_or_out_of_range_gives_default_and_warning(key, raw, caplog):
    settings = Settings(DictStore({key: raw}))
    with caplog.at_level(logging.WARNING, logger="app.core.settings"):
        assert settings.get(key) == PREF_BY_KEY[key].default
    assert settings.warnings and key in settings.warnings[0]
    assert any(key in r.getMessage() for r in caplog.records)


def test_silence_range_comes_from_the_silence_rules():
    from app.core import silence
    pref = PREF_BY_KEY["recognition/silence_ms"]
    assert (pref.minimum, pref.maximum, pref.default) == (silence.MIN_MS, silence.MAX_MS, silence.DEFAULT_MS)
    assert pref.coerce(20000) == 20000
    with pytest.raises(ValueError, match="20001"):
        pref.coerce(20001)


def test_defaults_helper():
    assert defaults(["recognition/silence_ms"]) == {"recognition/silence_ms": 700}


def test_session_config_from_values_and_chunk_clamped_per_protocol():
    values = Settings(DictStore()).snapshot()
    values.update({"connection/protocol": "v2", "connection/chunk_ms": 50,
                   "connection/server_url": "  http://127.0.0.1:9  ",
                   "recognition/vocabulary": ("foo",), "recognition/silence_ms": 900})
    config = session_config(values.get, "assemblyai")
    assert config.protocol == "v2" and config.chunk_ms == CHUNK_LIMITS_MS["v2"][0]
    assert config.server_url == "http://127.0.0.1:9"
    assert config.vocabulary == ("foo",) and config.silence_ms == 900
    config.validate()
    v3 = session_config(Settings(DictStore({"connection/protocol": "v3",
                                            "connection/chunk_ms": 2000})).get, "assemblyai")
    assert v3.chunk_ms == CHUNK_LIMITS_MS["v3"][1] and v3.server_url is None and v3.token_url is None
    v3.validate()


def test_a_bad_value_is_warned_about_once(caplog):
    settings = Settings(DictStore({"recognition/silence_ms": "loud"}))
    with caplog.at_level(logging.WARNING, logger="app.core.settings"):
        for _ in range(5):
            assert settings.get("recognition/silence_ms") == 700
    assert len(settings.warnings) == 1
    assert len([r for r in caplog.records if "silence_ms" in r.getMessage()]) == 1


def session_config_from(values, engine="assemblyai"):
    settings = Settings(DictStore(values))
    if values.get("connection/protocol") == "v2":
        settings.set("connection/chunk_ms", 100)
    return session_config(settings.get, engine)


def validation_error(key, value):
    try:
        PREF_BY_KEY[key].coerce(value)
    except ValueError as exc:
        return str(exc)
    return None


def test_recognition_prefs_reach_the_session_config():
    values = {"connection/speech_model": "universal-3-6-pro", "recognition/speaker_labels": True,
              "recognition/max_speakers": 4, "recognition/languages": ("en", "es"),
              "recognition/language_detection": True, "recognition/prompt": "Board meeting",
              "recognition/mode": "balanced", "recognition/voice_focus": "far-field",
              "recognition/filter_profanity": True, "recognition/inactivity_timeout_s": 3}
    config = session_config_from(values)
    config.validate()
    assert (config.speaker_labels, config.max_speakers, config.language_codes) == (True, 4, ("en", "es"))
    assert (config.prompt, config.mode, config.voice_focus) == ("Board meeting", "balanced", "far-field")
    assert config.filter_profanity and config.language_detection and config.session_heartbeat
    assert config.inactivity_timeout_s == 5            # below the server's minimum: raised to 5
    plain = session_config_from({})
    assert not plain.speaker_labels and plain.max_speakers is None and plain.mode is None
    assert plain.inactivity_timeout_s is None


def test_saved_options_the_model_or_engine_lacks_are_left_out():
    values = {"connection/speech_model": "whisper-rt", "recognition/speaker_labels": True,
              "recognition/max_speakers": 3, "recognition/prompt": "Topic"}
    config = session_config_from(values)
    config.validate()
    assert not config.speaker_labels and config.prompt == ""
    local = session_config_from({"recognition/speaker_labels": True, "recognition/languages": ("es",)},
                                engine="local")
    assert not local.speaker_labels and local.language_codes == () and not local.session_heartbeat
    v2 = session_config_from({"connection/protocol": "v2", "recognition/language_detection": True,
                              "recognition/inactivity_timeout_s": 30})
    v2.validate()
    assert not v2.language_detection and v2.inactivity_timeout_s is None


def test_bad_recognition_pref_values_fall_back():
    assert validation_error("recognition/max_speakers", 11)
    assert validation_error("recognition/mode", "fast")
    assert validation_error("recognition/voice_focus", "headset")
    assert validation_error("recognition/languages", ["en"]) is None
