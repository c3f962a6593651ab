"""A wrong key saved in the keyring: captions stop with the server's refusal, and the API key
page says that the stored key was refused (the status line sends the user there)."""

from __future__ import annotations

from app.core import credentials
from app.core.credentials import Secret
from app.core.settings import DictStore, Settings


def test_the_api_key_page_says_the_stored_key_was_refused(qtbot, loopback_server, speech_wav,
                                                           tmp_path, monkeypatch):
    from app.qt.controller import Controller
    from app.qt.settings_dialog import SettingsDialog
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    credentials.save_api_key(Secret("wrong-key-0000"))
    wav = speech_wav("Good morning everyone.", tail_ms=600)
    settings = Settings(DictStore({"engine/engine": "assemblyai",
                                   "connection/server_url": loopback_server.url,
                                   "transcript/enabled": False}))
    controller = Controller(settings, overrides={"source": f"file:{wav}"},
                            transcript_dir=tmp_path / "t")
    try:
        controller.start()
        qtbot.waitUntil(lambda: not controller.running, timeout=30000)
        assert controller.status.state.value == "error", controller.status
        assert "Check the API key in Settings" in controller.status.text
        dialog = SettingsDialog(settings, controller)
        qtbot.addWidget(dialog)
        text = dialog.api_key.stored_label.text()
        assert "AssemblyAI refused it when captions last started" in text, text
    finally:
        controller.shutdown()
