"""The settings dialog with a controller double: OK/Apply/Cancel, validity, live previews."""

import time

import pytest
from PySide6.QtCore import Qt

from app.core.settings import PREF_BY_KEY, DictStore, Settings
from app.qt.settings_dialog import SettingsDialog
from app.core.silence_scale import ms_at, position_for
from app.qt.settings_pages import silence as silence_page
from tests.qt.test_settings_fakes import FakeController


@pytest.fixture
def controller():
    return FakeController()


@pytest.fixture
def settings():
    return Settings(DictStore())


@pytest.fixture
def dialog(qtbot, settings, controller, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names",
                        lambda: ([("usb", "USB Mic")], [("out.monitor", "Speakers")], ""))
    dlg = SettingsDialog(settings, controller)
    qtbot.addWidget(dlg)
    return dlg


def test_pages_follow_one_contract(dialog):
    assert [p.title for p in dialog.pages] == ["Connection", "API key", "Recognition",
                                              "Translation", "Vocabulary", "Silence", "Audio",
                                              "Appearance", "General", "Sharing"]
    for page in dialog.pages:
        for method in ("load", "save", "restore_defaults", "revert", "committed", "values",
                       "set_values", "problem"):
            assert callable(getattr(page, method))


def test_opening_sends_nothing_live(dialog, controller):
    assert controller.calls == []


def test_apply_saves_and_reports_changed_keys(dialog, settings, controller):
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    dialog.vocabulary.editor.edit.setPlainText("AssemblyAI, Kubernetes")
    dialog.audio.source.setCurrentIndex(dialog.audio.source.findData("both"))
    assert dialog.apply()
    assert settings.get("connection/protocol") == "v2"
    assert settings.get("recognition/vocabulary") == ("AssemblyAI", "Kubernetes")
    assert settings.get("audio/source") == "both"
    assert controller.named("set_vocabulary") == []   # applied once, by the controller
    assert controller.named("apply_settings") == [(
        {"connection/protocol", "recognition/vocabulary", "audio/source"},)]
    controller.calls.clear()
    assert dialog.apply()            # nothing changed since: no apply_settings call
    assert controller.named("apply_settings") == []


def make_v2_vocabulary(total):
    terms = [f"t{i:03d}" + "x" * 45 for i in range(50)]
    terms.append("y" * (total - 2450))
    return "\n".join(terms)


def test_ok_and_apply_disabled_over_the_limit(dialog, settings, qtbot):
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    dialog.vocabulary.editor.edit.setPlainText(make_v2_vocabulary(2500))
    assert dialog.ok_button.isEnabled() and dialog.apply_button.isEnabled()
    dialog.vocabulary.editor.edit.setPlainText(make_v2_vocabulary(2501))
    assert not dialog.ok_button.isEnabled() and not dialog.apply_button.isEnabled()
    assert "Vocabulary" in dialog.problem.text() and "over the limit" in dialog.problem.text()
    dialog.accept()                  # a forced accept still refuses
    assert settings.get("recognition/vocabulary") == ()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert settings.get("recognition/vocabulary") == ()
    dialog.vocabulary.editor.edit.setPlainText(make_v2_vocabulary(2500))
    assert dialog.ok_button.isEnabled()


def test_protocol_switch_applies_the_other_limit(dialog):
    dialog.vocabulary.editor.edit.setPlainText("x" * 60)     # one 60-character term
    assert not dialog.ok_button.isEnabled()                  # v3 (default): > 50 characters
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    assert dialog.ok_button.isEnabled()                      # v2: 60 of 2500 characters
    assert dialog.vocabulary.editor.counter.text() == "60 / 2500 characters"
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("assemblyai"))
    assert "v2" in dialog.silence.mapping.text()


def test_cancel_reverts_live_previews_and_saves_nothing(dialog, settings, controller, qtbot):
    dialog.silence.box.setValue(3000)
    dialog.appearance.font_size.setValue(60)
    dialog.vocabulary.editor.edit.setPlainText("unsaved")
    qtbot.waitUntil(lambda: controller.named("set_silence_threshold")[-1:] == [(3000,)],
                    timeout=5000)
    assert controller.named("preview_style")[-1][0]["appearance/font_size"] == 60
    dialog.reject()
    assert controller.named("set_silence_threshold")[-1] == (700,)     # back to the saved value
    assert controller.named("preview_style")[-1] == (None,)
    assert settings.get("recognition/silence_ms") == 700
    assert settings.get("appearance/font_size") == 28
    assert settings.get("recognition/vocabulary") == ()
    assert controller.named("apply_settings") == []


def test_cancel_after_apply_keeps_the_applied_values(dialog, settings, controller, qtbot):
    dialog.silence.box.setValue(1200)
    assert dialog.apply()
    assert settings.get("recognition/silence_ms") == 1200
    n = len(controller.named("set_silence_threshold"))
    dialog.reject()
    assert len(controller.named("set_silence_threshold")) == n       # nothing to revert


def test_silence_live_updates_are_throttled(dialog, controller, qtbot):
    for position in range(position_for(800), position_for(20000) + 1):   # a fast drag end to end
        dialog.silence.slider.setValue(position)
    assert dialog.silence.box.value() == 20000
    qtbot.waitUntil(lambda: controller.named("set_silence_threshold")[-1:] == [(20000,)],
                    timeout=5000)
    sent = controller.named("set_silence_threshold")
    assert len(sent) <= 3, sent            # first position at once, the last one trailing
    times = controller.times("set_silence_threshold")
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= silence_page.SEND_INTERVAL_MS / 1000 * 0.8 for g in gaps), gaps


def test_silence_sustained_drag_stays_a_few_per_second(dialog, controller, qtbot):
    start = time.monotonic()
    position, step = 0, 1
    while time.monotonic() - start < 1.2:
        position += step
        if position in (0, dialog.silence.slider.maximum()):
            step = -step
        dialog.silence.slider.setValue(position)
        qtbot.wait(20)
    value = ms_at(position)
    qtbot.waitUntil(lambda: controller.named("set_silence_threshold")[-1:] == [(value,)],
                    timeout=5000)
    times = controller.times("set_silence_threshold")
    span = times[-1] - times[0]
    assert len(times) >= 2
    assert (len(times) - 1) / max(span, 1e-6) <= 1000 / silence_page.SEND_INTERVAL_MS * 1.25


def test_silence_box_and_slider_stay_in_sync_and_bounded(dialog, controller):
    dialog.silence.box.setValue(1200)
    assert ms_at(dialog.silence.slider.value()) == 1200
    dialog.silence.slider.setValue(dialog.silence.slider.maximum())
    assert dialog.silence.box.value() == 20000
    dialog.silence.slider.setValue(0)
    assert dialog.silence.box.value() == 0
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("assemblyai"))
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v3"))
    assert dialog.silence.mapping.text() == (
        "Details: sent to AssemblyAI as v3: min_turn_silence = 0 ms, max_turn_silence = 1280 ms")


def test_a_typed_silence_beyond_the_limit_is_explained_not_cut(dialog, controller, settings):
    sent = len(controller.named("set_silence_threshold"))
    dialog.silence.box.lineEdit().selectAll()
    dialog.silence.box.lineEdit().insert("999999")
    dialog.silence.box.interpretText()
    assert dialog.silence.box.value() == 999999              # what was typed stays there
    assert not dialog.ok_button.isEnabled()
    assert "at most 20000 ms" in dialog.problem.text() and "999999 ms" in dialog.problem.text()
    assert len(controller.named("set_silence_threshold")) == sent   # nothing out of range sent
    assert not dialog.apply() and settings.get("recognition/silence_ms") == 700
    dialog.silence.box.setValue(900)
    assert dialog.ok_button.isEnabled()


def test_silence_slider_gives_the_useful_range_room(dialog):
    slider = dialog.silence.slider
    assert position_for(1500) - position_for(300) >= 0.3 * slider.maximum()


def test_offline_engine_pages_speak_plainly(dialog):
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("local"))
    assert dialog.silence.mapping.text() == "The offline engine ends a line after this much silence."
    assert "turn_silence" not in dialog.silence.mapping.text()
    assert "Universal-Streaming" not in dialog.vocabulary.help.text()
    assert "offline engine" in dialog.vocabulary.help.text()
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("assemblyai"))
    assert "Universal-Streaming" in dialog.vocabulary.help.text()


def test_both_sources_on_assemblyai_says_two_sessions_are_billed(dialog):
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("assemblyai"))
    dialog.audio.source.setCurrentIndex(dialog.audio.source.findData("both"))
    assert "billed twice" in dialog.audio.billing_note.text()
    assert not dialog.audio.billing_note.isHidden()
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("local"))
    assert "billed" not in dialog.audio.billing_note.text()
    dialog.audio.source.setCurrentIndex(dialog.audio.source.findData("mic"))
    assert dialog.audio.billing_note.isHidden()


def test_restore_defaults_for_the_shown_page(dialog, settings, controller):
    dialog.silence.box.setValue(5000)
    assert dialog.apply()
    dialog.show_page("Silence")
    dialog.defaults_button.click()
    assert dialog.silence.box.value() == 700
    assert settings.get("recognition/silence_ms") == 5000       # only OK/Apply writes
    assert dialog.apply()
    assert settings.get("recognition/silence_ms") == 700


def test_restore_defaults_every_page_matches_declared_defaults(dialog):
    for page in dialog.pages:
        page.restore_defaults()
        for key, value in page.values().items():
            assert PREF_BY_KEY[key].coerce(value) == PREF_BY_KEY[key].coerce(
                PREF_BY_KEY[key].default), key


def test_connection_page_bounds_chunk_by_protocol(dialog):
    page = dialog.connection
    page.protocol.setCurrentIndex(page.protocol.findData("v3"))
    page.chunk_ms.setValue(40)
    assert page.chunk_ms.value() == 50
    page.chunk_ms.setValue(1500)
    assert page.chunk_ms.value() == 1000
    page.protocol.setCurrentIndex(page.protocol.findData("v2"))
    assert (page.chunk_ms.minimum(), page.chunk_ms.maximum()) == (100, 2000)
    assert "100\u20132000 ms" in page.chunk_limits.text()
    assert not page.speech_model.isEnabled()


def test_connection_page_validates_urls_and_broker(dialog):
    page = dialog.connection
    page.server_url.setText("not a url")
    assert not dialog.ok_button.isEnabled() and "server URL" in dialog.problem.text()
    page.server_url.setText("http://127.0.0.1:8765")
    assert dialog.ok_button.isEnabled()
    page.auth_mode.setCurrentIndex(page.auth_mode.findData("broker"))
    assert page.token_url.isEnabled()
    assert not dialog.ok_button.isEnabled() and "broker" in dialog.problem.text()
    page.token_url.setText("https://tokens.example.org/mint")
    assert dialog.ok_button.isEnabled()
    assert dialog.apply()
    assert dialog.settings.get("connection/auth_mode") == "broker"


def test_engine_choice_explains_offline_default(dialog):
    page = dialog.connection
    assert page.engine.currentData() == "auto"
    help_text = " ".join(w.text() for w in page.findChildren(type(page.chunk_limits)))
    assert "offline engine" in help_text and "API key" in help_text
    page.engine.setCurrentIndex(page.engine.findData("assemblyai"))
    assert dialog.apply() and dialog.settings.get("engine/engine") == "assemblyai"


def test_corrupt_settings_are_announced(qtbot, controller, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    settings = Settings(DictStore({"recognition/silence_ms": "loud"}))
    dlg = SettingsDialog(settings, controller)
    qtbot.addWidget(dlg)
    assert dlg.silence.box.value() == 700
    assert "reset to defaults" in dlg.problem.text()


def test_status_from_the_controller_is_shown(dialog, controller):
    from app.core.status import Status
    controller.status_changed.emit(Status(text="Live", silence_ms=900))
    assert "Live" in dialog.status.text() and "900 ms" in dialog.status.text()


def test_appearance_preset_and_custom_colours_preview_live(dialog, controller):
    page = dialog.appearance
    page.preset.setCurrentIndex(page.preset.findData("yellow_on_black"))
    assert page.text_color.value() == "#ffff00"
    last = controller.named("preview_style")[-1][0]
    assert last["appearance/text_color"] == "#ffff00" and last["appearance/preset"] == "yellow_on_black"
    page.text_color.edit.setText("#00ff00")
    assert page.preset.currentData() == "custom"
    assert controller.named("preview_style")[-1][0]["appearance/text_color"] == "#00ff00"
    page.background_color.edit.setText("#12")
    assert not dialog.ok_button.isEnabled() and "#rrggbb" in dialog.problem.text()
    page.background_color.edit.setText("#123456")
    assert dialog.apply()
    assert dialog.settings.get("appearance/background_color") == "#123456"
    assert dialog.settings.get("appearance/preset") == "custom"
    assert controller.named("preview_style")[-1] == (None,)


def test_appearance_covers_every_style_key(dialog, controller):
    page = dialog.appearance
    page.stable_only.setChecked(True)
    page.lines.setValue(4)
    page.clear_after.setValue(0)
    page.source_labels.setChecked(False)
    page.effect.setCurrentIndex(page.effect.findData("shadow"))
    page.opacity.setValue(40)
    values = controller.named("preview_style")[-1][0]
    assert set(values) == set(dialog.appearance.keys)
    assert values["captions/stable_only"] is True and values["captions/lines"] == 4
    assert values["appearance/background_opacity"] == 40
    assert page.clear_after.text() == "Never"


def test_reopened_dialog_shows_saved_values_not_cancelled_edits(dialog, settings, controller, qtbot):
    dialog.show()
    dialog.silence.box.setValue(4000)
    dialog.vocabulary.editor.edit.setPlainText("cancelled")
    dialog.reject()
    dialog.show()
    assert dialog.silence.box.value() == 700
    assert dialog.vocabulary.editor.terms() == []
    from app.core.status import Status
    controller.status_changed.emit(Status(text="Live", silence_ms=650))
    assert "650 ms" in dialog.status.text()
    dialog.reject()


def test_general_page_transcripts_start_and_hotkeys(dialog, settings, controller):
    page = dialog.general
    assert page.hotkeys["hotkeys/force_end"].text() == "Ctrl+Alt+Shift+F11"
    page.transcript_enabled.setChecked(False)
    assert not page.retention.isEnabled()
    page.start_on_launch.setChecked(False)
    page.hotkeys["hotkeys/force_end"].setText("E")              # no modifier: would block typing
    assert not dialog.ok_button.isEnabled() and "needs Ctrl" in dialog.problem.text()
    page.hotkeys["hotkeys/force_end"].setText("Ctrl+Alt+Shift+F9")   # same as show/hide
    assert not dialog.ok_button.isEnabled() and "used for both" in dialog.problem.text()
    page.hotkeys["hotkeys/force_end"].setText("")               # empty = no hotkey
    assert dialog.apply()
    assert settings.get("transcript/enabled") is False and settings.get("app/start_on_launch") is False
    assert settings.get("hotkeys/force_end") == ""
    assert controller.named("apply_settings")[-1] == (
        {"transcript/enabled", "app/start_on_launch", "hotkeys/force_end"},)


def test_problem_text_follows_the_current_reason(dialog):
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    dialog.vocabulary.editor.edit.setPlainText(make_v2_vocabulary(2501))
    assert "1 characters over" in dialog.problem.text()
    dialog.vocabulary.editor.edit.insertPlainText("zz")
    assert "3 characters over" in dialog.problem.text()


def test_v2_is_refused_in_the_eu_region_unless_a_custom_server(dialog):
    page = dialog.connection
    page.region.setCurrentIndex(page.region.findData("eu"))
    assert dialog.ok_button.isEnabled()                        # v3 serves the EU
    page.protocol.setCurrentIndex(page.protocol.findData("v2"))
    assert not dialog.ok_button.isEnabled() and "US region" in dialog.problem.text()
    page.server_url.setText("http://127.0.0.1:8765")
    assert dialog.ok_button.isEnabled() and not page.region.isEnabled()


def test_unwritable_settings_file_is_reported_and_changes_still_apply(qtbot, controller, tmp_path,
                                                                      monkeypatch):
    from app.qt.settings_store import QSettingsStore
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    path = tmp_path / "settings.ini"
    settings = Settings(QSettingsStore(str(path)))
    dlg = SettingsDialog(settings, controller)
    qtbot.addWidget(dlg)
    path.unlink(missing_ok=True)                   # created empty (0600) by the store
    path.mkdir()                                   # the file cannot be written any more
    dlg.silence.box.setValue(1500)
    dlg.accept()
    assert dlg.result() == 0                       # stays open to show the problem
    assert "could not be written" in dlg.problem.text()
    assert controller.named("apply_settings") == [({"recognition/silence_ms"},)]
    assert settings.get("recognition/silence_ms") == 1500
    n = len(controller.named("set_silence_threshold"))
    dlg.reject()                                   # closing now reverts nothing: it is applied
    assert len(controller.named("set_silence_threshold")) == n


def test_a_growing_status_line_does_not_widen_the_dialog(dialog, controller, qtbot):
    from app.core.status import State, Status
    dialog.show()
    qtbot.waitExposed(dialog)
    width = dialog.width()
    long = Status(state=State.RECONNECTING, text="Reconnecting: " + "the connection was lost again " * 8)
    controller.status_changed.emit(long)
    qtbot.wait(50)
    assert dialog.width() == width
    assert dialog.status.text().startswith("Reconnecting")


def test_title_does_not_repeat_the_app_name(dialog):
    # The platform appends the application's display name to every window title.
    assert dialog.windowTitle() == "Settings"


def test_server_url_with_an_impossible_port_is_refused(dialog):
    from app.qt.settings_pages.connection import url_problem
    assert "port 99999" in url_problem("ws://127.0.0.1:99999", "server URL")
    assert "port 0" in url_problem("http://localhost:0", "server URL")
    assert url_problem("http://localhost:8765", "server URL") == ""
    assert url_problem("https://[::1]:443/prefix", "server URL") == ""
    dialog.connection.server_url.setText("http://127.0.0.1:99999")
    assert not dialog.ok_button.isEnabled() and "1 to 65535" in dialog.problem.text()
    dialog.connection.server_url.setText("http://127.0.0.1:9999")
    assert dialog.ok_button.isEnabled()

# ---- Recognition page --------------------------------------------------------------------------
def _model(dialog, name):
    dialog.connection.speech_model.setEditText(name)
    dialog.recognition.refresh_context()


def test_recognition_page_saves_every_option(dialog, settings):
    page = dialog.recognition
    _model(dialog, "universal-3-6-pro")
    page.speaker_labels.setChecked(True)
    page.max_speakers.setValue(3)
    page.languages.setText("en, es, en")
    page.detect.setChecked(True)
    page.prompt.setPlainText("Budget review with Dana and Óscar")
    page.mode.setCurrentIndex(page.mode.findData("max_accuracy"))
    page.voice_focus.setCurrentIndex(page.voice_focus.findData("far-field"))
    page.inactivity.setValue(2)
    assert dialog.apply()
    assert settings.get("recognition/speaker_labels") and settings.get("recognition/max_speakers") == 3
    assert settings.get("recognition/languages") == ("en", "es")
    assert settings.get("recognition/prompt") == "Budget review with Dana and Óscar"
    assert settings.get("recognition/mode") == "max_accuracy"
    assert settings.get("recognition/voice_focus") == "far-field"
    assert settings.get("recognition/inactivity_timeout_s") == 5     # the server's minimum
    assert not settings.get("recognition/filter_profanity")          # off by default


def test_recognition_options_the_model_lacks_are_disabled_with_the_reason(dialog):
    page = dialog.recognition
    _model(dialog, "whisper-rt")
    assert not page.speaker_labels.isEnabled() and "does not label speakers" in page.speaker_labels.toolTip()
    assert not page.prompt.isEnabled() and "Pro" in page.prompt.toolTip()
    assert "does not label speakers" in page.reasons.text()
    assert "99+ languages" in page.model_info.text()
    _model(dialog, "universal-streaming-english")
    assert not page.detect.isEnabled() and not page.languages.isEnabled()
    assert page.speaker_labels.isEnabled() and not page.mode.isEnabled()
    _model(dialog, "universal-3-5-pro")
    assert page.prompt.isEnabled() and page.mode.isEnabled() and page.voice_focus.isEnabled()
    _model(dialog, "next-month-model")
    assert page.prompt.isEnabled() and "does not know" in page.model_info.text()


def test_recognition_page_follows_protocol_and_offline_engine(dialog):
    page = dialog.recognition
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    assert not page.speaker_labels.isEnabled() and "v3" in page.speaker_labels.toolTip()
    assert not page.inactivity.isEnabled()
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v3"))
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("local"))
    page.refresh_context()
    assert "no speaker labels" in page.speaker_labels.toolTip() and "English only" in page.reasons.text()


def test_recognition_page_refuses_bad_language_codes(dialog):
    page = dialog.recognition
    _model(dialog, "universal-streaming-multilingual")
    page.languages.setText("en, english")
    assert "not a language code" in page.problem()
    assert not dialog.ok_button.isEnabled()
    page.languages.setText("en, pt-BR")
    assert page.problem() == "" and dialog.ok_button.isEnabled()
