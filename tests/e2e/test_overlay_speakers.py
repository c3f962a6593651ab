"""The GUI on a real (private) X desktop with speaker labels: three scripted speakers, two
languages, a revision and a session limit of a few seconds crossed several times. The overlay
reads as a conversation, each final arrives once, no session is closed by the server for its
age, and the history window and the exported WebVTT name the right speakers."""

from __future__ import annotations

import pytest

from tests.core.streaming.test_rollover_loopback import MEETING, meeting_wav

pytestmark = pytest.mark.desktop

APP = """
from app.cli import build_parser
from app.core.settings import Settings
from app.qt.settings_store import QSettingsStore
from app.qt.application import GuiApp

settings = Settings(QSettingsStore(SETTINGS_PATH))
settings.set("captions/lines", 8)
settings.set("captions/clear_after_s", 0)
settings.set("appearance/font_size", 20)
settings.set("recognition/speaker_labels", True)
settings.set("recognition/language_detection", True)
settings.set("recognition/silence_ms", 400)
settings.set("connection/speech_model", "universal-streaming-multilingual")
args = build_parser().parse_args(["--source", "file:" + WAV, "--server", SERVER, "--engine", "assemblyai",
                                  "--transcript-dir", TRANSCRIPTS])
gui = GuiApp(settings, args)
finals, revisions = [], []
gui.controller.final.connect(lambda label, f: finals.append((f.id, f.text, f.speaker, f.language)))
gui.controller.revision.connect(lambda label, r: revisions.append((r.id, r.speaker)))
gui.start()
gui.open_history()
"""


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.timeout(180)
def test_three_speakers_two_languages_a_revision_and_rollovers_on_the_overlay(
        desktop, loopback_factory, tmp_path, artifacts_dir):
    server = loopback_factory(script=MEETING, max_session_s=6.0)
    wav = meeting_wav(tmp_path / "meeting.wav", len(MEETING))
    setup = (APP.replace("SETTINGS_PATH", repr(str(tmp_path / "settings.ini")))
             .replace("WAV", repr(str(wav))).replace("SERVER", repr(server.url))
             .replace("TRANSCRIPTS", repr(str(tmp_path / "t"))))
    proc = desktop.spawn_qt(setup, env={"ASSEMBLYAI_API_KEY": server.api_key})
    proc.wait_for("gui.overlay.isVisible() and gui.overlay.windowHandle().isExposed()")
    proc.wait_for(f"len(finals) == {len(MEETING)} and not gui.controller.running", timeout=120)
    desktop.screenshot(artifacts_dir / "overlay-speakers.png")
    finals = proc.call("finals")
    assert [(t, s, lang) for _id, t, s, lang in finals] == [
        (m["text"], m["speaker"], m["language"]) for m in MEETING]
    assert proc.call("revisions") == [[finals[3][0], "C"]]
    shown = proc.call("gui.overlay.caption_text()")
    # A conversation: each speaker change starts a named paragraph; the revised line moved to C.
    assert "Speaker A: Good morning, everyone." in flat(shown)
    assert "Speaker B: [ES] Buenos días a todos." in flat(shown)
    assert "Speaker C: [EN] Shall we start? [ES] Sí, empecemos." in flat(shown)
    assert flat(shown).count("Thanks, everyone.") == 1
    # Colours: speakers A, B and C are drawn in their own palette colours.
    assert proc.call("sorted({r.color for l in gui.overlay.model.lines() for r in l.runs if r.color})") \
        == sorted({"#ffff66", "#8ae8ff", "#a6ff9e"})
    # History window: the revision moved the line, the rename renames every line of that speaker.
    rows = proc.call("[(r.speaker, r.text) for r in gui._history.model.rows()]")
    assert rows[3] == ["Speaker C", "Sí, empecemos."]
    proc.call("gui._history.rename_speaker('A', 'Dana')")
    assert proc.call("[r.speaker for r in gui._history.model.rows()][0]") == "Dana"
    assert "Dana: Good morning, everyone." in flat(proc.call("gui.overlay.caption_text()"))
    vtt = proc.call("__import__('app.core.export', fromlist=['to_vtt']).to_vtt("
                    "gui._history.model.export_entries(gui.controller.transcript_path))")
    assert "<v Dana><lang en>Good morning, everyone.</lang>" in vtt
    assert "<v Speaker C><lang es>Sí, empecemos.</lang>" in vtt
    # Several sessions, every one ended by the client: none was closed for its age.
    assert server.wait_for(lambda: all(r.ended for r in server.sessions), 10)
    assert len([r for r in server.sessions if r.audio_ms > 0]) >= 3
    assert [r.close_code for r in server.sessions] == [1000] * len(server.sessions)
    assert server.all_violations == []
