"""Run the loopback AssemblyAI-compatible server by hand:

    python -m tests.loopback --port 8765 [--script lines.txt] [--api-key K]
    ASSEMBLYAI_API_KEY=K caption-overlay --headless --server http://127.0.0.1:8765 --source file:talk.wav

One final text per utterance comes from the script file (one line each, in order); after the
script runs out the offline engine transcribes, if installed (--offline), else "utterance N".
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from pathlib import Path

from .server import LoopbackServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.loopback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--script", type=Path,
                        help="text file: one final transcript per line, in order; or a .json list of "
                             "entries with speaker, language, revise, translation (see transcripts.py)")
    parser.add_argument("--api-key", help="the API key clients must present (default: a random one, "
                                          "printed at start)")
    parser.add_argument("--offline", action="store_true",
                        help="transcribe with the offline engine when the script is exhausted")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="v2 idle timeout in seconds (default 60)")
    parser.add_argument("--rate-grace", type=float, default=60.0,
                        help="seconds of audio a client may run ahead of real time (default 60)")
    parser.add_argument("--max-session", type=float, default=None, help="maximum session length in seconds")
    parser.add_argument("--partial-interval", type=int, default=300, help="ms of speech between partials")
    parser.add_argument("--quiet", action="store_true", help="do not log sessions to stderr")
    args = parser.parse_args(argv)

    script: list[str] = []
    if args.script:
        try:
            text = args.script.read_text(encoding="utf-8")
            if args.script.suffix == ".json":      # a JSON list of entries: speakers, languages…
                import json
                script = json.loads(text)
                from .transcripts import check_entry
                for entry in script:
                    check_entry(entry)
            else:
                script = [line.strip() for line in text.splitlines() if line.strip()]
        except (OSError, ValueError, TypeError) as exc:
            print(f"Cannot read the script file: {exc}", file=sys.stderr)
            return 2
    transcriber = None
    if args.offline:
        try:
            from app.core.engines.availability import offline_engine_available
            from app.core.engines.transcriber import OfflineTranscriber
            ok, why = offline_engine_available()
            if not ok:
                raise RuntimeError(why)
            transcriber = OfflineTranscriber()
        except Exception as exc:  # not installed or no model: say so and carry on
            print(f"Offline engine unavailable ({exc}); using the script / 'utterance N'.", file=sys.stderr)

    if not args.api_key:   # no well-known key that anything else on this computer could guess
        args.api_key = "loopback-" + secrets.token_urlsafe(12)
    log = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    server = LoopbackServer(api_keys=(args.api_key,), script=script, transcriber=transcriber,
                            partial_interval_ms=args.partial_interval, idle_timeout_s=args.idle_timeout,
                            rate_grace_s=args.rate_grace, max_session_s=args.max_session, port=args.port, log=log)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"Could not start the server: {exc}", file=sys.stderr)
        return 1
    print(f"Loopback AssemblyAI server on {server.url} (v2: {server.ws_url('v2')}, v3: {server.ws_url('v3')})",
          flush=True)
    print(f"Try: ASSEMBLYAI_API_KEY={args.api_key} caption-overlay --headless --server {server.url} "
          f"--source file:talk.wav", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
