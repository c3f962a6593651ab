"""``--headless --translate-to es`` against the loopback server, end to end: translations that
come late and out of order land under the right final (JSON ids, indented text lines, the
transcript), a failed one says why on stderr, and the captions never stop."""

from __future__ import annotations

import json

from app.core.transcript import attach_translations, read_transcript, transcript_files
from tests.core.streaming.test_rollover_loopback import meeting_wav
from tests.e2e.test_cli import KEY, events, finish, start

SCRIPT = [{"text": "Good morning, everyone.", "translation": "Buenos días a todos.",
           "translation_delay_ms": 3000},                    # arrives after the next final
          {"text": "Shall we start?", "translation": "¿Empezamos?"},
          {"text": "The budget looks fine.", "translation_error": "The model refused"},
          {"text": "Thanks, everyone.", "translation": "Gracias a todos."}]
ARGS = ["--translate-to", "Spanish", "--silence-ms", "400"]


def test_cli_translates_to_spanish(loopback_factory, tmp_path):
    wav = meeting_wav(tmp_path / "meeting.wav", len(SCRIPT))
    runs = []
    for json_mode in (True, False):
        server = loopback_factory(api_keys=(KEY,), script=SCRIPT)
        saved = tmp_path / ("json" if json_mode else "text")
        argv = ["--source", f"file:{wav}", "--server", server.url, "--transcript-dir", str(saved),
                *ARGS] + (["--json"] if json_mode else [])
        runs.append((json_mode, server, saved, start(argv)))
    for json_mode, server, saved, proc in runs:
        code, out, err = finish(proc, timeout=90)
        assert code == 0, err
        assert server.wait_for(lambda: all(r.ended for r in server.sessions), 10)
        record = server.sessions[0]
        assert record.violations == []
        assert record.query["speech_model"] == "universal-3-6-pro"      # switched, with a notice
        gateway = json.loads(record.query["llm_gateway"])
        assert gateway["model"] == "gemini-2.5-flash-lite"
        assert "{{turn}}" in gateway["messages"][0]["content"]
        assert "universal-3-6-pro" in err
        assert "Translation unavailable" in err and "The model refused" in err
        if json_mode:
            evs = events(out)
            finals = [e for e in evs if e["event"] == "final"]
            assert [f["text"] for f in finals] == [s["text"] for s in SCRIPT]
            translations = [e for e in evs if e["event"] == "translation"]
            by_id = {t["id"]: t for t in translations}
            assert {f["text"]: by_id.get(f["id"], {}).get("text") for f in finals} == {
                "Good morning, everyone.": "Buenos días a todos.",
                "Shall we start?": "¿Empezamos?", "The budget looks fine.": None,
                "Thanks, everyone.": "Gracias a todos."}
            assert all(t["language"] == "es" and t["source"] == "file" for t in translations)
            kinds = [(e["event"], e.get("id")) for e in evs]
            # Out of order: the first translation came after the second final.
            assert kinds.index(("translation", finals[0]["id"])) > kinds.index(("final", finals[1]["id"]))
            for t in translations:
                assert kinds.index(("translation", t["id"])) > kinds.index(("final", t["id"]))
            assert [e for e in evs if e["event"] in ("error", "llm_response")] == []
        else:
            lines = out.splitlines()
            assert [line for line in lines if not line.startswith("    ")] == [s["text"] for s in SCRIPT]
            for entry in SCRIPT:
                if "translation" in entry:
                    assert lines.index("    " + entry["translation"]) > lines.index(entry["text"])
        [path] = transcript_files(saved)
        entries = attach_translations(read_transcript(path))
        assert [(e.text, e.translation) for e in entries if e.is_final] == [
            (s["text"], s.get("translation", "")) for s in SCRIPT]
