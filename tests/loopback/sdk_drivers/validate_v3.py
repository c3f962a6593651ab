"""Validate loopback v3 server messages against assemblyai 1.8.x's own pydantic models.

argv[1]: path of a JSON file holding a list of server messages. Prints one JSON line per message:
{"event": "valid", "type": ...} or {"event": "invalid", "type": ..., "error": ...}; unknown types
are reported as {"event": "unmodelled", ...} (the SDK ignores them too).
"""

import json
import sys

from assemblyai.streaming.v3 import models

from common import emit, run

BY_TYPE = {
    "Begin": models.BeginEvent, "Turn": models.TurnEvent, "Termination": models.TerminationEvent,
    "SpeechStarted": models.SpeechStartedEvent, "Error": models.ErrorEvent,
    "Warning": models.WarningEvent, "Heartbeat": models.HeartbeatEvent,
    "Silence": models.SilenceEvent, "LLMGatewayResponse": models.LLMGatewayResponseEvent,
    "SpeakerRevision": models.SpeakerRevisionEvent,
}


# In AssemblyAI's message docs but not (yet) in the SDK's models (wire reference §3.3, §3.4).
DOCUMENTED_EXTRAS = {"Turn": {"utterance"}, "SpeechStarted": {"confidence"}}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        messages = json.load(f)
    for message in messages:
        kind = message.get("type")
        model = BY_TYPE.get(kind)
        if model is None:
            emit("unmodelled", type=kind)
            continue
        try:
            parsed = model.model_validate(message)
        except Exception as exc:
            emit("invalid", type=kind, error=str(exc)[:500])
            continue
        # Fields the SDK does not model would be silently dropped: report them.
        known = set(model.model_fields)
        extra = sorted(set(message) - known - DOCUMENTED_EXTRAS.get(kind, set()))
        if kind == "Turn":
            for word in message.get("words", []):
                extra += sorted(set(word) - set(models.Word.model_fields))
        emit("valid", type=kind, extra=extra, dump=json.loads(parsed.model_dump_json()))


if __name__ == "__main__":
    run(main)
