"""The headless CLI with speaker labels and language detection against the loopback server, with
a session limit of a few seconds: three speakers, two languages, a revision, several rollovers.
The text and JSON contracts of the README, end to end."""

from __future__ import annotations

import json

from tests.core.streaming.test_rollover_loopback import MEETING, meeting_wav
from tests.e2e.test_cli import KEY, events, finish, start

ARGS = ["--speaker-labels", "--language-detection", "--speech-model", "universal-streaming-multilingual",
        "--silence-ms", "400"]


def test_cli_speakers_languages_revision_and_rollover(loopback_factory, tmp_path):
    wav = meeting_wav(tmp_path / "meeting.wav", len(MEETING))
    runs = []
    for json_mode in (True, False):
        server = loopback_factory(api_keys=(KEY,), script=MEETING, max_session_s=6.0)
        argv = ["--source", f"file:{wav}", "--server", server.url, *ARGS] + (["--json"] if json_mode else [])
        runs.append((json_mode, server, start(argv)))
    results = [(json_mode, server, *finish(proc, timeout=90)) for json_mode, server, proc in runs]
    for json_mode, server, code, out, err in results:
        assert code == 0, err
        assert server.wait_for(lambda: all(r.ended for r in server.sessions), 10)
        assert all(r.close_code == 1000 for r in server.sessions), [(r.close_code, r.close_reason)
                                                                    for r in server.sessions]
        assert len([r for r in server.sessions if r.audio_ms > 0]) >= 3      # the limit was crossed
        assert all(r.violations == [] for r in server.sessions)
        if json_mode:
            evs = events(out)
            finals = [e for e in evs if e["event"] == "final"]
            assert [f["text"] for f in finals] == [m["text"] for m in MEETING]
            assert [f["speaker"] for f in finals] == [f"Speaker {m['speaker']}" for m in MEETING]
            assert [f["language"] for f in finals] == [m["language"] for m in MEETING]
            assert len({f["id"] for f in finals}) == len(finals)
            revisions = [e for e in evs if e["event"] == "revision"]
            assert revisions == [{"event": "revision", "id": finals[3]["id"], "speaker": "Speaker C",
                                  "source": "file"}]
            started = [e for e in evs if e["event"] == "session_started"]
            assert len(started) >= 3 and {s["model"] for s in started} == {"universal-streaming-multilingual"}
            assert [e for e in evs if e["event"] in ("error", "gap")] == []
            json.dumps(evs)
        else:
            assert out.splitlines() == [f"Speaker {m['speaker']}: {m['text']}" for m in MEETING]
            assert 'speaker revised: "Sí, empecemos." was said by Speaker C.' in err
