"""Command-line contract (documented in the README; other tools rely on it)."""

from __future__ import annotations

import argparse

from app import APP_ID, __version__
from app.core.session_config import AUTH_MODES, ENCODINGS, ENGINES, PROTOCOLS, REGIONS
from app.core.speech_models import MODES, VOICE_FOCUS

# Exit codes of the headless mode.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_AUDIO = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=APP_ID,
        description="Live captions in an always-on-top overlay, or on stdout with --headless.",
        epilog=("The AssemblyAI API key comes from the system keyring (Settings → API key) or the "
                "ASSEMBLYAI_API_KEY environment variable; without one the offline engine is used. "
                "Only one overlay runs per user: launching it again brings the running one forward "
                "and hands it these options. Exit codes: 0 ok, 2 usage or configuration, 3 key or "
                "authorization, 4 connection, 5 audio device."),
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="no window: print captions to stdout (one final per line)")
    mode.add_argument("--list-devices", action="store_true",
                      help="list microphones and system-audio sources with the names --source takes")
    mode.add_argument("--self-test", action="store_true",
                      help="check audio, keyring and the overlay, then exit (0 = all worked)")
    p.add_argument("--source", metavar="SPEC",
                   help="file:PATH | mic[:NAME] | system[:NAME] | both (default: the configured source)")
    p.add_argument("--engine", choices=ENGINES,
                   help="assemblyai (cloud) or local (offline); default: assemblyai when a key "
                        "or token source is configured, otherwise local")
    p.add_argument("--protocol", choices=PROTOCOLS, help="v3 Universal-Streaming (default) or v2 legacy")
    p.add_argument("--server", metavar="URL",
                   help="http(s)://HOST:PORT of an AssemblyAI-compatible server (WebSocket and tokens)")
    p.add_argument("--allow-insecure", action="store_true", default=None,
                   help="allow unencrypted http:// and ws:// to a host other than this computer "
                        "(the key or token and the captions then cross the network in clear)")
    p.add_argument("--region", choices=REGIONS)
    p.add_argument("--auth", choices=[m for m in AUTH_MODES], dest="auth_mode",
                   help="key: API key header; token: mint a one-time token; broker: fetch from --token-url")
    p.add_argument("--token-url", metavar="URL", help="organisation token broker (GET/POST → {\"token\": ...})")
    p.add_argument("--vocabulary", metavar="TERMS", help='comma-separated terms to boost, e.g. "Kubernetes, Añejo"')
    p.add_argument("--silence-ms", type=int, metavar="N", help="end-of-utterance silence, 0-20000 ms")
    p.add_argument("--speech-model", metavar="NAME",
                   help="v3 speech model, e.g. universal-streaming-english, "
                        "universal-streaming-multilingual, universal-3-5-pro, universal-3-6-pro, "
                        "whisper-rt, or the name of a newer one")
    p.add_argument("--speaker-labels", action="store_const", const=True, default=None,
                   help="v3: label who is speaking (captions start with \"Speaker A: \")")
    p.add_argument("--max-speakers", type=int, metavar="N", help="with --speaker-labels: at most N (1-10)")
    p.add_argument("--language", metavar="CODE[,CODE...]",
                   help="v3: the language(s) spoken, e.g. en or en,es")
    p.add_argument("--language-detection", action="store_const", const=True, default=None,
                   help="v3: detect the language of each caption")
    p.add_argument("--prompt", metavar="TEXT",
                   help="v3 Pro models: what the meeting is about, names (context, not instructions)")
    p.add_argument("--mode", choices=MODES, help="v3 Pro models: latency versus accuracy")
    p.add_argument("--voice-focus", choices=VOICE_FOCUS,
                   help="v3 Pro models: near-field (headset) or far-field (room microphone)")
    p.add_argument("--translate-to", metavar="LANG",
                   help="v3 Pro models: translate each caption into LANG (a name such as Spanish "
                        "or a code such as es or pt-BR); billed per caption by AssemblyAI")
    p.add_argument("--translate-model", metavar="NAME",
                   help="with --translate-to: the LLM that translates (default gemini-2.5-flash-lite)")
    p.add_argument("--encoding", choices=ENCODINGS)
    p.add_argument("--sample-rate", type=int, metavar="N")
    p.add_argument("--chunk-ms", type=int, metavar="N", help="audio per frame (v2 100-2000, v3 50-1000)")
    p.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    p.add_argument("--transcript-dir", metavar="DIR", help="where session transcripts are saved")
    share = p.add_argument_group("sharing captions")
    share.add_argument("--serve", metavar="[HOST:]PORT",
                       help="serve the caption page, /events (SSE) and /ws; a LAN address "
                            "(e.g. 0.0.0.0:8765) requires the printed link's access token")
    share.add_argument("--zoom-url", metavar="URL",
                       help="Zoom caption API token URL (or @FILE holding it): send each final")
    share.add_argument("--youtube-url", metavar="URL",
                       help="YouTube Live caption ingestion URL (or @FILE): send each final")
    share.add_argument("--webhook-url", metavar="URL",
                       help="POST each final as its JSON record to this URL (or @FILE)")
    share.add_argument("--caption-lang", metavar="xx-YY",
                       help="language sent to Zoom with each caption (default en-US)")
    return p
