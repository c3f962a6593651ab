"""Drive assemblyai==0.64.2's v2 RealtimeTranscriber against the loopback server.

argv[1]: JSON {http_url, ws_url, api_key, wav, use_token, word_boost, threshold, actions:[{at_ms, do, value}]}
"""

import json
import sys
import time

import assemblyai as aai

from common import emit, paced, run, wav_chunks


def main() -> None:
    cfg = json.loads(sys.argv[1])
    emit("sdk", version=aai.__version__ if hasattr(aai, "__version__") else "?")
    token = None
    if cfg.get("use_token"):
        # The token call is plain HTTP(S) (httpx): it needs an http:// base URL, the WebSocket a ws:// one.
        aai.settings.base_url = cfg["http_url"]
        aai.settings.api_key = cfg["api_key"]
        token = aai.RealtimeTranscriber.create_temporary_token(expires_in=cfg.get("expires_in", 3600))
        emit("token", length=len(token))
        client = aai.Client(settings=aai.Settings(base_url=cfg["ws_url"], api_key=None), api_key_required=False)
    else:
        client = aai.Client(settings=aai.Settings(base_url=cfg["ws_url"], api_key=cfg["api_key"]))

    def on_data(t):
        kind = "final" if isinstance(t, aai.RealtimeFinalTranscript) else "partial"
        emit(kind, text=t.text, audio_start=t.audio_start, audio_end=t.audio_end)

    transcriber = aai.RealtimeTranscriber(
        sample_rate=cfg["rate"],
        word_boost=cfg.get("word_boost", []),
        token=token,
        client=client,
        end_utterance_silence_threshold=cfg.get("threshold"),
        on_open=lambda s: emit("open", session_id=str(s.session_id), expires_at=str(s.expires_at)),
        on_data=on_data,
        on_error=lambda e: emit("error", message=str(e)),
        on_close=lambda: emit("close"),
        on_extra_session_information=lambda i: emit("session_information", seconds=i.audio_duration_seconds),
    )
    transcriber.connect(timeout=10)

    def act(action):
        if action["do"] == "threshold":
            transcriber.configure_end_utterance_silence_threshold(action["value"])
        elif action["do"] == "force":
            transcriber.force_end_utterance()

    rate, chunks = wav_chunks(cfg["wav"], cfg.get("chunk_ms", 100))
    for chunk in paced(chunks, cfg.get("chunk_ms", 100), cfg.get("actions", []), act):
        transcriber.stream(chunk)
    emit("closing")
    started = time.monotonic()
    transcriber.close()          # blocks until SessionTerminated (or forever, if a server never sends it)
    emit("closed", seconds=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    run(main)
