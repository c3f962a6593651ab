"""The real v3 client and pipeline against the loopback server with a session limit of a few
seconds: three scripted speakers, two languages, a revision, several rollovers; every final
arrives exactly once, in order, and no session is ever closed by the server for its age."""

from __future__ import annotations

import threading
import wave

from app.core.audio.source import WavFileSource
from app.core.credentials import Secret
from app.core.events import Final, Gap, Revision, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from tests.loopback.wsclient import tone_speech

KEY = "loopback-key-rollover"
MEETING = [
    {"text": "Good morning, everyone.", "speaker": "A", "language": "en"},
    {"text": "Buenos días a todos.", "speaker": "B", "language": "es"},
    {"text": "Shall we start?", "speaker": "C", "language": "en"},
    {"text": "Sí, empecemos.", "speaker": "B", "language": "es", "revise": [[0, "C"]]},
    {"text": "First item: the budget.", "speaker": "A", "language": "en"},
    {"text": "It looks fine to me.", "speaker": "C", "language": "en"},
    {"text": "De acuerdo.", "speaker": "B", "language": "es"},
    {"text": "Thanks, everyone.", "speaker": "A", "language": "en"},
]


def meeting_wav(path, n):
    segments = [("silence", 0.4)]
    for _ in range(n):
        segments += [("speech", 0.6), ("silence", 1.4)]
    pcm = tone_speech(segments, 16000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


def test_rollovers_keep_every_final_once_with_speakers_and_languages(loopback_factory, tmp_path):
    server = loopback_factory(api_keys=(KEY,), script=MEETING, max_session_s=6.0)
    config = SessionConfig(server_url=server.url, silence_ms=400, speaker_labels=True,
                           language_detection=True, speech_model="universal-streaming-multilingual")
    config.validate()
    source = WavFileSource(meeting_wav(tmp_path / "m.wav", len(MEETING)), 16000, 100)
    events = []
    lock = threading.Lock()

    def listener(event):
        with lock:
            events.append(event)

    pipeline = CaptionPipeline(source, lambda lst: create_session(config, lst, api_key=Secret(KEY)),
                               listener, base_backoff_s=0.2, max_retries=2)
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert pipeline.fatal_error is None
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == [m["text"] for m in MEETING]
    assert [f.language for f in finals] == [m["language"] for m in MEETING]
    assert [f.speaker for f in finals] == [m["speaker"] for m in MEETING]
    assert len({f.id for f in finals}) == len(finals)
    revisions = [e for e in events if isinstance(e, Revision)]
    assert revisions == [Revision(finals[3].id, "C")]
    # Several sessions, each ended by our Terminate, none by the server's limit.
    assert pipeline.rollovers >= 2
    assert server.wait_for(lambda: all(r.ended for r in server.sessions), 10)
    records = [r for r in server.sessions if r.audio_ms > 0]
    assert len(records) >= 3
    assert all(r.close_code == 1000 for r in server.sessions), [(r.close_code, r.close_reason)
                                                                for r in server.sessions]
    assert [e for e in events if isinstance(e, (StreamError, Gap))] == []
    assert all(r.violations == [] for r in server.sessions)
    # Captions never stopped: stream times rise monotonically across sessions.
    assert all(b.audio_start >= a.audio_end for a, b in zip(finals, finals[1:]))
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert all(s.model == "universal-streaming-multilingual" for s in started)
