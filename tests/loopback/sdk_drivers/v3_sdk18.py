"""Drive assemblyai 1.8.x's v3 streaming client (RealTimeTranscriber / StreamingClient).

argv[1]: JSON {api_host, api_key, wav, rate, use_token, keyterms, format_turns, min_turn_silence,
               speech_model, speaker_labels, max_speakers, language_detection, llm_gateway,
               actions:[{at_ms, do: "set_params"|"force", params}]}
"""

import json
import sys
import time

import assemblyai as aai
from assemblyai.streaming.v3 import (RealTimeEvents, RealTimeParameters, RealTimeSessionParameters,
                                     RealTimeTranscriber, RealTimeTranscriberOptions)

from common import emit, paced, run, wav_chunks


def _content(data):
    """The completion's text; None for a failed answer (no choices, or an error object)."""
    try:
        return data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None


def main() -> None:
    cfg = json.loads(sys.argv[1])
    emit("sdk", version=getattr(aai, "__version__", "?"))
    # A generous handshake timeout: the test machine may be loaded (the default is 1 s).
    options = RealTimeTranscriberOptions(api_host=cfg["api_host"], api_key=cfg["api_key"], connect_timeout=10)
    if cfg.get("use_token"):
        # The SDK mints the token itself: GET https://{api_host}/v3/token (needs the TLS server).
        minter = RealTimeTranscriber(options)
        token = minter.create_temporary_token(expires_in_seconds=cfg.get("expires_in", 60),
                                              max_session_duration_seconds=cfg.get("max_session"))
        emit("token", length=len(token))
        options = RealTimeTranscriberOptions(api_host=cfg["api_host"], token=token, connect_timeout=10)
    client = RealTimeTranscriber(options)
    client.on(RealTimeEvents.Begin, lambda c, e: emit("open", id=e.id, expires_at=str(e.expires_at)))
    client.on(RealTimeEvents.Turn, lambda c, e: emit(
        "turn", turn_order=e.turn_order, end_of_turn=e.end_of_turn, formatted=e.turn_is_formatted,
        transcript=e.transcript, words=len(e.words),
        start=e.words[0].start if e.words else None, end=e.words[-1].end if e.words else None,
        speaker_label=e.speaker_label, language_code=e.language_code,
        word_speakers=sorted({w.speaker for w in e.words if w.speaker})))
    client.on(RealTimeEvents.SpeakerRevision, lambda c, e: emit(
        "speaker_revision", revisions=[[r.turn_order, r.speaker_label] for r in e.revisions]))
    client.on(RealTimeEvents.LLMGatewayResponse, lambda c, e: emit(
        "llm", turn_order=e.turn_order, transcript=e.transcript, content=_content(e.data),
        error=(e.data.get("error") or {}).get("message") if isinstance(e.data, dict) else None))
    client.on(RealTimeEvents.Termination, lambda c, e: emit(
        "termination", audio_s=e.audio_duration_seconds, session_s=e.session_duration_seconds))
    client.on(RealTimeEvents.Error, lambda c, e: emit("error", message=str(e), code=getattr(e, "code", None)))
    extra = {k: cfg[k] for k in ("speech_model", "speaker_labels", "max_speakers", "language_detection",
                                 "llm_gateway") if cfg.get(k) is not None}
    client.connect(RealTimeParameters(
        sample_rate=cfg["rate"], format_turns=cfg.get("format_turns", True),
        keyterms_prompt=cfg.get("keyterms") or None, min_turn_silence=cfg.get("min_turn_silence"),
        max_turn_silence=cfg.get("max_turn_silence"), **extra))

    def act(action):
        if action["do"] == "set_params":
            client.set_params(RealTimeSessionParameters(**action["params"]))
        elif action["do"] == "force":
            client.force_endpoint()

    rate, chunks = wav_chunks(cfg["wav"], cfg.get("chunk_ms", 100))
    for chunk in paced(chunks, cfg.get("chunk_ms", 100), cfg.get("actions", []), act):
        client.stream(chunk)
    emit("closing")
    started = time.monotonic()
    client.disconnect(terminate=True)
    emit("closed", seconds=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    run(main)
