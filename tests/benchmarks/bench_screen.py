"""Message → screen and end of speech → final on screen, in the real GUI under Xvfb.

The benchmark process becomes the GUI app: a private Xvfb (24-bit, Composite) with xcompmgr and
openbox, the app's own ``GuiApp`` (controller, overlay, tray, hotkeys, transcript autosave), the
real v3/v2 client, against the loopback server running in ANOTHER process (as a real server
would be). Audio is espeak-ng speech from a WAV file paced at real time, like a microphone.

Instrumentation lives here only (no app code is edited):
- a transport subclass stamps every text message when ``recv`` returns on the client's receive
  thread; a listener wrapper ties the Partial/Final that message produced (emitted synchronously
  on that thread) to the stamp;
- an overlay subclass notes which stamped captions it was handed and, at the end of the next
  ``paintEvent`` (Qt flushes the backing store to X right after), records stamp → painted.

Measurements:
- message → screen p50/p99 (target p99 ≤ 16 ms: one frame at 60 Hz);
- end of speech → final painted, minus (silence threshold + one chunk): what the client, server
  and GUI add beyond the endpointing wait the user asked for (target ≤ 50 ms). The end of speech is
  where the server's own energy endpointer (run here on the same samples) puts it; the audio
  clock is the file source's pacing (chunk k is handed over at origin + (k+1)·chunk).

- with ``--translate``: translation arrival → translation on screen p50/p99 (target p99 ≤ 16 ms).
  Arrival is when the client received the LLMGatewayResponse, or, for one that came before its
  final, the final's message (the earliest it can be placed); every third answer is delayed by
  the server so they come late and out of order, and finals are measured alongside (a final never
  waits for a translation).

Run: ``.venv/bin/python -m tests.benchmarks.bench_screen [--protocol v3|v2|both] [--repeat N]
[--speakers] [--translate]`` (``--speakers``: speaker labels and language detection, three
speakers, revisions; ``--translate``: live translation into Spanish, v3 only)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tests.benchmarks.common import SENTENCES, percentile, result, speech_wav

ROOT = Path(__file__).resolve().parents[2]
DESKTOP_TOOLS = ("Xvfb", "xcompmgr", "openbox", "xdpyinfo", "xprop")


# ---- shared helpers (also used by bench_startup / bench_resources) -------------------------------
@contextmanager
def private_desktop(size=(1280, 800)):
    """A private X display: Xvfb (24-bit, Composite) + xcompmgr + openbox. Yields its env dict."""
    missing = [t for t in DESKTOP_TOOLS if not shutil.which(t)]
    if missing:
        raise SystemExit(f"desktop tools missing: {', '.join(missing)} (bash packaging/dev.sh test installs them)")
    from tests.fixtures.desktop import x_desktop
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    try:
        with x_desktop(home, size=size) as (_display, env):
            yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)


class LoopbackProcess:
    """``python -m tests.loopback`` in its own process (its CPU is not the client's)."""

    def __init__(self, script: list[str] | None = None, api_key: str = "bench-key") -> None:
        self.api_key = api_key
        self._dir = Path(tempfile.mkdtemp(prefix="bench-loopback-"))
        cmd = [sys.executable, "-m", "tests.loopback", "--port", "0", "--api-key", api_key, "--quiet"]
        if script and any(isinstance(e, dict) for e in script):
            import json
            path = self._dir / "script.json"
            path.write_text(json.dumps(script))
            cmd += ["--script", str(path)]
        elif script:
            path = self._dir / "script.txt"
            path.write_text("\n".join(script) + "\n")
            cmd += ["--script", str(path)]
        self._err = open(self._dir / "stderr.txt", "w")
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=self._err,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError(f"loopback server did not start: {line!r}")
        self.url = m.group(1)
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._err.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def speech_ends_ms(wav_path: Path, silence_ms: int) -> list[int]:
    """Where the loopback server's endpointer ends each utterance of this file (stream ms)."""
    from tests.loopback.endpointer import Endpointer, UtteranceEnd
    with wave.open(str(wav_path), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    ep = Endpointer(rate, silence_ms)
    # trailing silence so the last utterance ends too
    events = ep.feed(np.concatenate([pcm, np.zeros(rate * (silence_ms + 500) // 1000, dtype=np.int16)]))
    return [e.end_ms for e in events if isinstance(e, UtteranceEnd)]


# ---- the instrumented GUI run ------------------------------------------------------------------
def run_gui_once(protocol: str, wav: Path, server_url: str, api_key: str, silence_ms: int,
                 chunk_ms: int, workdir: Path, timeout_s: float, variant: str = "app",
                 speakers: bool = False, translate: bool = False, speech_model: str = "") -> dict:
    """Run the real GuiApp on the current display until the file ends; return the raw timings."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import app.qt.overlay as overlay_mod
    from app import APP_ID
    from app.core.audio.devices import open_sources
    from app.core.credentials import Secret
    from app.core.events import Final, LLMResponse, Partial
    from app.core.session_factory import create_session
    from app.core.settings import DictStore, Settings
    from app.core.streaming.transport import WebSocketTransport
    from app.qt.application import GuiApp
    from app.qt.controller import Controller

    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    qapp.setApplicationName(APP_ID)
    qapp.setQuitOnLastWindowClosed(False)

    stamps: dict[tuple[str, str], float] = {}      # (kind, text) → receive time (perf_counter)
    msg_latency: list[tuple[str, float]] = []       # (kind, seconds)
    stages: list[tuple[float, float, float]] = []    # (recv→slot, slot→paint start, paint duration)
    paints: list[tuple[bool, float]] = []             # every paintEvent: (had a new caption, seconds)
    finals_painted: list[tuple[str, float, int]] = []   # (text, painted at, audio_end ms)
    first_chunk: list[float] = []

    class TimingTransport(WebSocketTransport):
        rx_time = 0.0
        rx_ident = None

        def recv(self):
            msg = super().recv()
            if msg is not None and msg.kind == "text":
                self.rx_time = time.perf_counter()
                self.rx_ident = threading.get_ident()
            return msg

    def timed_create(config, listener, *, api_key=None, token_url=None, **options):
        transports: list[TimingTransport] = []

        def transport_factory():
            transports.append(TimingTransport())
            return transports[-1]

        def on_event(event):
            if isinstance(event, (Partial, Final)) and transports:
                t = transports[-1]
                if t.rx_ident == threading.get_ident():   # produced by the message just received
                    stamps[(type(event).__name__, event.text)] = t.rx_time
            elif isinstance(event, LLMResponse) and event.final_id is not None and transports:
                t = transports[-1]
                if t.rx_ident == threading.get_ident():
                    stamps[("Translation", event.final_id)] = t.rx_time
            listener(event)

        return create_session(config, on_event, api_key=api_key, token_url=token_url,
                              transport_factory=transport_factory, **options)

    def timed_open_sources(spec, rate, chunk):
        sources = open_sources(spec, rate, chunk)
        for src in sources:
            original = src.read

            def read(original=original):
                data = original()
                if data and not first_chunk:
                    first_chunk.append(time.perf_counter() - len(data) / 2 / rate)
                return data

            src.read = read
        return sources

    class TimedOverlay(overlay_mod.CaptionOverlay):
        if variant == "no-levels":
            def set_levels(self, levels):
                pass

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._pending: list[tuple[str, float, float]] = []
            self._pending_finals: list[tuple[str, int]] = []

        def on_partial(self, label, partial):
            t = stamps.pop(("Partial", partial.text), None)
            slot = time.perf_counter()
            super().on_partial(label, partial)
            if t is not None:
                self._pending.append(("partial", t, slot))

        def on_final(self, label, final):
            t = stamps.pop(("Final", final.text), None)
            slot = time.perf_counter()
            super().on_final(label, final)
            if t is not None:
                self._pending.append(("final", t, slot))
            self._pending_finals.append((final.text, int(final.audio_end)))

        def on_translation(self, label, translation):
            t = stamps.pop(("Translation", translation.id), None)
            slot = time.perf_counter()
            super().on_translation(label, translation)
            if t is not None:
                self._pending.append(("translation", t, slot))

        def paintEvent(self, event):
            start = time.perf_counter()
            super().paintEvent(event)
            now = time.perf_counter()
            paints.append((bool(self._pending or self._pending_finals), now - start))
            for kind, t, slot in self._pending:
                msg_latency.append((kind, now - t))
                stages.append((slot - t, start - slot, now - start))
            for text, end in self._pending_finals:
                finals_painted.append((text, now, end))
            self._pending.clear()
            self._pending_finals.clear()

    original_overlay = overlay_mod.CaptionOverlay
    overlay_mod.CaptionOverlay = TimedOverlay
    settings = Settings(DictStore({
        "engine/engine": "assemblyai", "connection/protocol": protocol, "connection/server_url": server_url,
        "connection/chunk_ms": chunk_ms, "recognition/silence_ms": silence_ms,
        "overlay/visible": True, "app/start_on_launch": True, "captions/clear_after_s": 0,
        **({"appearance/text_effect": "none"} if variant == "no-effect" else {}),
        **({"recognition/speaker_labels": True, "recognition/language_detection": True,
            "connection/speech_model": "universal-streaming-multilingual"} if speakers else {}),
        **({"translation/target": "es", "connection/speech_model": "universal-3-6-pro"}
           if translate else {}),
        **({"connection/speech_model": speech_model} if speech_model else {}),
    }))
    controller = Controller(settings, overrides={"source": f"file:{wav}"}, transcript_dir=workdir / "transcripts",
                            create_session=timed_create, open_sources=timed_open_sources,
                            key_loader=lambda: Secret(api_key))
    try:
        gui = GuiApp(settings, None, controller=controller)
    finally:
        overlay_mod.CaptionOverlay = original_overlay
    errors: list[str] = []
    controller.error.connect(errors.append)
    done = {"ran": False}

    def on_running(running):
        if running:
            done["ran"] = True
        elif done["ran"]:
            QTimer.singleShot(300, qapp.quit)   # let the last paint land

    controller.running_changed.connect(on_running)
    watchdog = QTimer(singleShot=True, interval=int(timeout_s * 1000))
    watchdog.timeout.connect(lambda: (errors.append("timed out"), qapp.quit()))
    watchdog.start()
    cpu0 = time.process_time()
    none0 = sys.getrefcount(None)
    gui.start()
    qapp.exec()
    cpu = time.process_time() - cpu0
    none1 = sys.getrefcount(None)
    controller.shutdown()
    gui.hotkeys.close()
    gui.tray.hide()
    gui.overlay.close()
    gui.overlay.deleteLater()
    qapp.processEvents()
    return {"msg_latency": msg_latency, "finals": finals_painted, "origin": first_chunk[0] if first_chunk else None,
            "errors": errors, "cpu_s": cpu, "stages": stages, "paints": paints,
            "none_refs": (none0, none1)}


def analyse(protocol: str, run: dict, ends_ms: list[int], silence_ms: int, chunk_ms: int) -> dict:
    lat_ms = [s * 1000.0 for k, s in run["msg_latency"] if k != "translation"]
    translation_ms = [s * 1000.0 for k, s in run["msg_latency"] if k == "translation"]
    finals_ms = [s * 1000.0 for k, s in run["msg_latency"] if k == "final"]
    excess = []
    added = []       # painted − when the chunk completing (end of speech + threshold) was handed over
    mismatch = []
    origin = run["origin"]
    for i, (text, painted, audio_end) in enumerate(run["finals"]):
        if origin is None or i >= len(ends_ms):
            break
        end = ends_ms[i]
        mismatch.append(abs(audio_end - end))
        excess.append((painted - (origin + end / 1000.0)) * 1000.0 - (silence_ms + chunk_ms))
        deciding = -(-(end + silence_ms) // chunk_ms) * chunk_ms
        added.append((painted - (origin + deciding / 1000.0)) * 1000.0)
    return {"protocol": protocol, "msg_ms": lat_ms, "final_msg_ms": finals_ms,
            "translation_ms": translation_ms, "excess_ms": excess, "added_ms": added,
            "end_mismatch_ms": mismatch}


def report(a: dict, variant: str) -> None:
    p = a["protocol"] + ("" if variant == "app" else f", {variant}") + (", speakers" if a.get("speakers") else "") \
        + (", translating" if a.get("translation_ms") else "")
    result(f"message→screen p50 ({p})", percentile(a["msg_ms"], 50), "ms", None)
    result(f"message→screen p99 ({p})", percentile(a["msg_ms"], 99), "ms", 16)
    result(f"end of speech→final on screen, excess p50 ({p})", percentile(a["excess_ms"], 50), "ms", 50)
    result(f"end of speech→final on screen, excess max ({p})", max(a["excess_ms"], default=float("nan")),
           "ms", 50)
    result(f"deciding chunk captured→final on screen p50 ({p})", percentile(a["added_ms"], 50), "ms", None)
    if a.get("translation_ms"):
        result(f"translation arrival→screen p50 ({p})", percentile(a["translation_ms"], 50), "ms", None)
        result(f"translation arrival→screen p99 ({p})", percentile(a["translation_ms"], 99), "ms", 16)
        result(f"final message→screen p99 while translating ({p})",
               percentile(a["final_msg_ms"], 99), "ms", 16)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=("v3", "v2", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=2, help="times the 6 sentences are spoken (default 2)")
    ap.add_argument("--silence-ms", type=int, default=500, help="silence threshold (default 500)")
    ap.add_argument("--chunk-ms", type=int, default=100, help="audio chunk (default 100)")
    ap.add_argument("--quick", action="store_true", help="one pass of the sentences")
    ap.add_argument("--speakers", action="store_true",
                    help="speaker labels and language detection on: three speakers in turn, two "
                         "languages, a revision every fifth caption (v3 only)")
    ap.add_argument("--variant", choices=("app", "no-effect", "no-levels"), default="app",
                    help="app = the overlay as shipped; no-effect = text effect 'none' (for comparison); "
                         "no-levels = no level bar repaints at all (upper bound)")
    ap.add_argument("--translate", action="store_true",
                    help="live translation into Spanish: answers delayed and out of order (v3 only)")
    ap.add_argument("--speech-model", default="",
                    help="v3 speech model (e.g. universal-3-6-pro, to compare with --translate)")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    protocols = ("v3", "v2") if args.protocol == "both" else (args.protocol,)
    if args.speakers or args.translate:
        protocols = ("v3",)
    work = Path(tempfile.mkdtemp(prefix="bench-screen-"))
    texts = list(SENTENCES) * repeat
    wav = speech_wav(work / "speech.wav", texts=texts, gap_s=1.2)
    ends = speech_ends_ms(wav, args.silence_ms)
    print(f"speech: {len(texts)} sentences, {len(ends)} utterances by the endpointer at {args.silence_ms} ms")
    audio_s = wave.open(str(wav)).getnframes() / 16000
    analysed = []
    try:
        with private_desktop() as env:
            for key in ("DISPLAY", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE", "HOME"):
                os.environ[key] = env[key]
            os.environ.pop("WAYLAND_DISPLAY", None)
            os.environ["XDG_DATA_HOME"] = str(work / "data")
            os.environ["XDG_CONFIG_HOME"] = str(work / "config")
            for protocol in protocols:
                script = texts
                if args.speakers:
                    script = [{"text": t, "speaker": "ABC"[i % 3], "language": "es" if i % 4 == 1 else "en",
                               **({"revise": [[1, "ABC"[(i + 1) % 3]]]} if i % 5 == 4 else {})}
                              for i, t in enumerate(texts)]
                if args.translate:
                    script = [{**(e if isinstance(e, dict) else {"text": e}),
                               "translation": f"(es) {e if isinstance(e, str) else e['text']}",
                               **({"translation_delay_ms": 2500} if i % 3 == 0 else {})}
                              for i, e in enumerate(script)]
                with LoopbackProcess(script=script) as server:
                    run = run_gui_once(protocol, wav, server.url, server.api_key, args.silence_ms,
                                       args.chunk_ms, work / protocol, timeout_s=audio_s + 60,
                                       variant=args.variant, speakers=args.speakers,
                                       translate=args.translate, speech_model=args.speech_model)
                if run["errors"]:
                    print(f"{protocol}: errors: {run['errors']}")
                a = analyse(protocol, run, ends, args.silence_ms, args.chunk_ms)
                a["cpu_s"] = run["cpu_s"]
                a["speakers"] = args.speakers
                if args.translate:
                    tr = a["translation_ms"]
                    print(f"{protocol}: {len(tr)} translations painted; arrival→screen p50 "
                          f"{percentile(tr, 50):.2f} ms p99 {percentile(tr, 99):.2f} ms "
                          f"max {max(tr, default=float('nan')):.2f} ms")
                pt = run["paints"]
                other = [d for c, d in pt if not c]
                print(f"{protocol}: {len(pt)} paintEvents ({len(pt) / audio_s:.1f}/s), {len(other)} without a new "
                      f"caption (status/level/timers); paintEvent mean {1e3 * sum(d for _, d in pt) / max(1, len(pt)):.2f} ms; "
                      f"total {sum(d for _, d in pt):.2f} s in paintEvent")
                n0, n1 = run["none_refs"]
                print(f"{protocol}: references to None {n0} → {n1} over the run "
                      f"({(n0 - n1) / max(1, len(pt)):.1f} lost per paintEvent; a binding that returns None "
                      f"without a reference makes this fall and aborts the process at 0 on Python < 3.12)")
                st = run["stages"]
                if st:
                    cols = list(zip(*st))
                    print(f"{protocol}: stages p50/p99 ms — receive→overlay slot "
                          f"{percentile(cols[0], 50) * 1e3:.2f}/{percentile(cols[0], 99) * 1e3:.2f}, "
                          f"slot→paint start {percentile(cols[1], 50) * 1e3:.2f}/{percentile(cols[1], 99) * 1e3:.2f}, "
                          f"paintEvent {percentile(cols[2], 50) * 1e3:.2f}/{percentile(cols[2], 99) * 1e3:.2f}")
                analysed.append(a)
                m, e = a["msg_ms"], a["excess_ms"]
                print(f"{protocol}: {len(m)} caption messages painted; message→screen p50 "
                      f"{percentile(m, 50):.2f} ms p99 {percentile(m, 99):.2f} ms max {max(m, default=float('nan')):.2f} ms")
                print(f"{protocol}: {len(e)} finals; end of speech→final painted, excess over "
                      f"threshold+chunk: p50 {percentile(e, 50):.1f} ms max {max(e, default=float('nan')):.1f} ms; "
                      f"after the deciding chunk was captured: p50 {percentile(a['added_ms'], 50):.1f} ms "
                      f"max {max(a['added_ms'], default=float('nan')):.1f} ms; "
                      f"server audio_end vs local endpointer max diff {max(a['end_mismatch_ms'], default=0):.0f} ms; "
                      f"GUI process CPU {run['cpu_s']:.1f} s for {audio_s:.0f} s of audio")
                report(a, args.variant)   # now: a later crash must not lose these
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
