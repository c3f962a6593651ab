"""Offscreen GUI end to end: the real controller, session worker and overlay against the loopback
server with speaker labels, language detection and a session limit of a few seconds."""

from __future__ import annotations

from app.core.credentials import Secret
from app.core.settings import DictStore, Settings
from app.qt.controller import Controller
from app.qt.overlay import CaptionOverlay
from tests.core.streaming.test_rollover_loopback import MEETING, meeting_wav

KEY = "offscreen-speakers-key"


def test_controller_and_overlay_with_speakers_and_rollovers(qtbot, loopback_factory, tmp_path):
    server = loopback_factory(api_keys=(KEY,), script=MEETING, max_session_s=6.0)
    wav = meeting_wav(tmp_path / "meeting.wav", len(MEETING))
    settings = Settings(DictStore())
    for key, value in (("recognition/speaker_labels", True), ("recognition/language_detection", True),
                       ("connection/speech_model", "universal-streaming-multilingual"),
                       ("captions/lines", 8), ("captions/clear_after_s", 0)):
        settings.set(key, value)
    controller = Controller(settings, overrides={"source": f"file:{wav}",
                                                 "connection/server_url": server.url,
                                                 "engine/engine": "assemblyai",
                                                 "recognition/silence_ms": 400},
                            transcript_dir=tmp_path / "t", key_loader=lambda: Secret(KEY))
    overlay = CaptionOverlay(settings)
    qtbot.addWidget(overlay)
    overlay.set_speaker_names(controller.names)
    controller.final.connect(overlay.on_final)
    controller.partial.connect(overlay.on_partial)
    controller.revision.connect(overlay.on_revision)
    finals, revisions = [], []
    controller.final.connect(lambda label, f: finals.append(f))
    controller.revision.connect(lambda label, r: revisions.append(r))
    overlay.show()
    controller.start()
    try:
        qtbot.waitUntil(lambda: len(finals) == len(MEETING) and not controller.running, timeout=90_000)
    finally:
        controller.shutdown()
    assert [(f.text, f.speaker, f.language) for f in finals] == [
        (m["text"], m["speaker"], m["language"]) for m in MEETING]
    assert [(r.id, r.speaker) for r in revisions] == [(finals[3].id, "C")]
    text = " ".join(overlay.caption_text().split())
    # The newest lines that fit: a conversation, the revised line under its right speaker.
    assert "Speaker C: [EN] Shall we start? [ES] Sí, empecemos." in text
    assert text.endswith("Speaker B: [ES] De acuerdo. Speaker A: [EN] Thanks, everyone.")
    assert text.count("Thanks, everyone.") == 1
    assert server.wait_for(lambda: all(r.ended for r in server.sessions), 10)
    assert len([r for r in server.sessions if r.audio_ms > 0]) >= 3
    assert all(r.close_code == 1000 for r in server.sessions)
