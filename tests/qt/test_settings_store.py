"""QSettingsStore: real INI files, read with types, corrupt files load as defaults with warnings."""

import logging
import subprocess
import sys
import textwrap

import pytest

from app.core.settings import PREF_BY_KEY, PREFS, Settings
from app.qt.settings_store import QSettingsStore, default_settings_path


def test_default_path_follows_xdg_config_home(_private_dirs):
    path = default_settings_path()
    assert str(path).startswith(str(_private_dirs / "config"))
    assert path.name == "settings.ini"


def test_missing_file_gives_defaults_without_warnings(tmp_path):
    settings = Settings(QSettingsStore(str(tmp_path / "none.ini")))
    assert settings.snapshot() == {p.key: p.default for p in PREFS}
    assert settings.warnings == []


def test_handwritten_ini_strings_are_read_with_types(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text(textwrap.dedent("""\
        [connection]
        protocol=v2
        sample_rate=8000
        chunk_ms=160
        [captions]
        stable_only=true
        show_source_labels=false
        [recognition]
        silence_ms=1500
        vocabulary=Zoë
        [appearance]
        text_color=#FFFF00
        """), encoding="utf-8")
    settings = Settings(QSettingsStore(str(path)))
    assert settings.get("connection/protocol") == "v2"
    assert settings.get("connection/sample_rate") == 8000
    assert settings.get("connection/chunk_ms") == 160
    assert settings.get("captions/stable_only") is True
    assert settings.get("captions/show_source_labels") is False
    assert settings.get("recognition/silence_ms") == 1500
    assert settings.get("recognition/vocabulary") == ("Zoë",)   # a bare one-item list
    assert settings.get("appearance/text_color") == "#ffff00"
    assert settings.warnings == []


def test_garbage_file_loads_as_defaults_with_warning_and_a_kept_copy(tmp_path, caplog):
    path = tmp_path / "settings.ini"
    junk = b"\x00\xff\xfe\x89PNG garbage [[[ \n=\n[connection\n\x01\x02 sample_rate\n" * 20
    path.write_bytes(junk)
    with caplog.at_level(logging.WARNING):
        store = QSettingsStore(str(path))
        settings = Settings(store)
        snapshot = settings.snapshot()
    assert snapshot == {p.key: p.default for p in PREFS}
    assert store.warnings and "damaged" in store.warnings[0]
    assert any("damaged" in r.getMessage() for r in caplog.records)
    copies = list(tmp_path.glob("settings.ini.corrupt-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == junk
    # Saving afterwards works and produces a clean file.
    settings.set("recognition/silence_ms", 900)
    assert store.sync() is None
    assert Settings(QSettingsStore(str(path))).get("recognition/silence_ms") == 900


def test_wrong_types_and_out_of_range_values_fall_back_with_warnings(tmp_path, caplog):
    path = tmp_path / "settings.ini"
    path.write_text(textwrap.dedent("""\
        [connection]
        protocol=v9
        sample_rate=lots
        chunk_ms=-40
        server_url=a, b
        [recognition]
        silence_ms=999999
        [captions]
        stable_only=perhaps
        lines=0
        [appearance]
        text_color=red
        font_size=12.5
        background_opacity=101
        [audio]
        source=microphone
        mic_device=@Variant(garbage)
        """), encoding="utf-8")
    bad = ["connection/protocol", "connection/sample_rate", "connection/chunk_ms",
           "connection/server_url", "recognition/silence_ms", "captions/stable_only",
           "captions/lines", "appearance/text_color", "appearance/font_size",
           "appearance/background_opacity", "audio/source"]
    with caplog.at_level(logging.WARNING, logger="app.core.settings"):
        settings = Settings(QSettingsStore(str(path)))
        snapshot = settings.snapshot()
    for key in bad:
        assert snapshot[key] == PREF_BY_KEY[key].default, key
        assert any(key in w for w in settings.warnings), key
        assert any(key in r.getMessage() for r in caplog.records), key
    assert snapshot["audio/mic_device"] == ""   # an unreadable Qt variant counts as absent


def test_round_trip_through_a_new_process(tmp_path):
    """Values written by the app come back typed in a fresh process (strings on disk)."""
    path = tmp_path / "settings.ini"
    store = QSettingsStore(str(path))
    settings = Settings(store)
    settings.set("recognition/vocabulary", ["Zoë", "naïve café", "日本語"])
    settings.set("captions/stable_only", True)
    settings.set("connection/sample_rate", 44100)
    settings.set("audio/mic_device", "USB Mic, left")
    assert store.sync() is None
    one = Settings(QSettingsStore(str(tmp_path / "one.ini")))
    one.set("recognition/vocabulary", ["only"])
    one.store.sync()
    empty = Settings(QSettingsStore(str(tmp_path / "empty.ini")))
    empty.set("recognition/vocabulary", [])
    empty.store.sync()
    code = textwrap.dedent(f"""
        import json, os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from app.core.settings import Settings
        from app.qt.settings_store import QSettingsStore
        a = Settings(QSettingsStore({str(path)!r}))
        b = Settings(QSettingsStore({str(tmp_path / 'one.ini')!r}))
        c = Settings(QSettingsStore({str(tmp_path / 'empty.ini')!r}))
        print(json.dumps([list(a.get("recognition/vocabulary")), a.get("captions/stable_only"),
                          a.get("connection/sample_rate"), a.get("audio/mic_device"),
                          list(b.get("recognition/vocabulary")), list(c.get("recognition/vocabulary")),
                          a.warnings + b.warnings + c.warnings]))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    import json
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        ["Zoë", "naïve café", "日本語"], True, 44100, "USB Mic, left", ["only"], [], []]


def test_remove_and_reset(tmp_path):
    store = QSettingsStore(str(tmp_path / "s.ini"))
    settings = Settings(store)
    settings.set("recognition/silence_ms", 100)
    settings.reset(["recognition/silence_ms"])
    assert settings.get("recognition/silence_ms") == 700


def test_writes_validate(tmp_path):
    settings = Settings(QSettingsStore(str(tmp_path / "s.ini")))
    with pytest.raises(ValueError):
        settings.set("recognition/silence_ms", 20001)
    assert settings.get("recognition/silence_ms") == 700
