"""The Translation page: language by name or code, the model switch, where it cannot work."""

import pytest

from app.core.settings import DictStore, Settings
from app.qt.settings_dialog import SettingsDialog
from tests.qt.test_settings_fakes import FakeController


@pytest.fixture
def settings():
    return Settings(DictStore())


@pytest.fixture
def dialog(qtbot, settings, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names",
                        lambda: ([("usb", "USB Mic")], [("out.monitor", "Speakers")], ""))
    dlg = SettingsDialog(settings, FakeController())
    qtbot.addWidget(dlg)
    return dlg


def test_choosing_a_language_switches_the_model_and_saves(dialog, settings):
    page = dialog.translation
    assert page.target_code() == "" and dialog.connection.speech_model.currentText() == \
        "universal-streaming-english"
    page.target.setCurrentIndex(page.target.findData("es"))
    assert dialog.connection.speech_model.currentText() == "universal-3-6-pro"
    page.context.setText("Dana, Añejo Corp")
    dialog.apply()
    assert settings.get("translation/target") == "es"
    assert settings.get("connection/speech_model") == "universal-3-6-pro"
    assert settings.get("translation/context") == "Dana, Añejo Corp"


def test_a_typed_name_or_code_is_resolved_and_nonsense_is_refused(dialog, settings):
    page = dialog.translation
    page.target.setEditText("german")
    assert page.target_code() == "de" and page.problem() == ""
    page.target.setEditText("pt-br")
    assert page.target_code() == "pt-BR"
    page.target.setEditText("Klingonese")
    assert "not a language" in page.problem()
    assert not dialog.ok_button.isEnabled()
    page.target.setEditText("es")
    page.model.setText("two words")
    assert "LLM model name" in page.problem()


def test_eu_region_disables_translation_with_the_reason(dialog):
    page = dialog.translation
    dialog.connection.region.setCurrentIndex(dialog.connection.region.findData("eu"))
    assert not page.target.isEnabled()
    assert "not yet available in the EU region" in page.reason.text()
    dialog.connection.region.setCurrentIndex(dialog.connection.region.findData("us"))
    assert page.target.isEnabled() and page.reason.text() == ""


def test_offline_engine_says_translation_needs_assemblyai(dialog):
    page = dialog.translation
    dialog.connection.engine.setCurrentIndex(dialog.connection.engine.findData("local"))
    assert not page.target.isEnabled() and "needs AssemblyAI" in page.reason.text()


def test_saved_values_load_back(qtbot, settings, monkeypatch):
    settings.set("translation/target", "pt-BR")
    settings.set("translation/show", "translation")
    settings.set("translation/model", "gpt-4.1-mini")
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    dlg = SettingsDialog(settings, FakeController())
    qtbot.addWidget(dlg)
    page = dlg.translation
    assert page.values() == {"translation/target": "pt-BR", "translation/show": "translation",
                             "translation/model": "gpt-4.1-mini", "translation/context": ""}
    # Loading a saved target does not touch the model on the Connection page.
    assert dlg.connection.speech_model.currentText() == "universal-streaming-english"
