"""Offline engine in real conversation (not a test): live-word and final delays on long sentences,
CPU per audio second, on a quiet machine and with another process keeping one core busy.

    .venv/bin/python -m tests.benchmarks.bench_offline_latency                 # Moonshine, ~7 min
    .venv/bin/python -m tests.benchmarks.bench_offline_latency --quick         # 4 clips, ~3 min
    .venv/bin/python -m tests.benchmarks.bench_offline_latency --model whisper
    .venv/bin/python -m tests.benchmarks.bench_offline_latency --minutes 10 --conditions contention

Audio: natural-length sentences by espeak-ng in five voices and speaking rates (2-40 s each, the
longest one a 40 s run-on sentence with no pause as long as the silence threshold), joined by
1.5 s pauses; the true speech start/end of each clip is known from the synthesis. The file is fed
to a ``LocalSession`` in 100 ms chunks at real time (chunk k sent at T0 + (k+1)·0.1 s) and every
event is stamped on arrival. Each condition runs in a fresh process; "contention" adds a second
process spinning on the CPU for the whole run (one core busy; the machine has two).

Measured per condition:
- CPU-s per audio-s (the engine process: feeder + engine), decode time / audio (RTF), and work
  counts that do not depend on load: decoder calls and seconds of audio encoded per audio second;
- first live words: first non-empty caption of a clip − its speech start (p50/p95);
- live lag during speech: at every 100 ms of each clip, time − the end of the audio the caption
  on screen covers (p50/p95/max), i.e. how far the live words are behind the speaker;
- final delay beyond the silence threshold: last final of a clip − speech end − threshold;
- live words wrong: each partial's words but its last (it may be cut mid-word), scored against the
  stretch of its clip's text they match best (word edits / words shown);
- "behind real time" notices, how long the longest such episode lasted (notice → "caught up"),
  and partials skipped;
- WER of the finals on the long set, and on the repository's espeak sets of ``bench_offline``
  (clean, pink noise at 15 dB), fed as fast as the engine takes them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.common import feed, percentile, result, write_wav  # noqa: E402

SILENCE_MS = 700
GAP_S = 1.5
RATE = 16000

# (text, espeak-ng voice, words per minute)
CLIPS = [
    ("Okay, let's get going.", "en-us", 160),
    ("The first thing I want to look at this morning is how the support queue has changed since "
     "we moved the help desk to the new system.", "en-us+f2", 150),
    ("When the new captions went out to the pilot customers, most of them told us the text was "
     "easy to follow, but a few said the words arrived a little too late to keep up with a fast "
     "speaker in a busy meeting.", "en-gb", 165),
    ("I spoke with the finance team yesterday afternoon and they agreed that we can move part of "
     "the travel budget into hardware for the training rooms, as long as the total for the quarter "
     "stays the same and we send them a short written plan by the end of next week, which I think "
     "is a fair request.", "en-us", 145),
    ("Thanks.", "en-us+f2", 150),
    ("So here is what happened during the outage on Tuesday: the database in the second region "
     "stopped accepting writes a little after ten in the morning, the monitoring system noticed "
     "it within two minutes and paged the engineer on call, who moved the traffic to the first "
     "region and then spent most of the afternoon working out why the disk had filled up so "
     "quickly, and the answer turned out to be a logging setting that somebody had changed for a "
     "test and never changed back, so the fix itself was tiny, but we have now added a check that "
     "warns us long before a disk gets anywhere near full, and we will go through the other "
     "settings that were changed for tests over the last year to make sure nothing similar is "
     "waiting for us.", "en-us", 160),
    ("Could you put the three options on one slide so that everyone can compare them side by "
     "side?", "en-gb-scotland", 140),
    ("The people who visited the new office last month liked the quiet rooms and the big windows, "
     "they were less happy with the kitchen, which gets crowded at lunch time, and several of them "
     "asked whether we could add more places to sit outside when the weather is good.",
     "en-us+m3", 175),
]
QUICK = (0, 1, 3, 5)


# ---------------------------------------------------------------------------------------------
# audio
def _espeak(text: str, voice: str, wpm: int, out: Path) -> np.ndarray:
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def make_long_set(workdir: Path, indices, minutes: float | None = None) -> tuple[Path, list[dict]]:
    """The clips joined by GAP_S pauses; returns the WAV and each clip's text and true speech span.
    ``minutes``: the clips are repeated until the audio lasts at least that long."""
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    pieces, clips, pos = [gap], [], len(gap)
    synthesised: dict[int, np.ndarray] = {}
    order = list(indices)
    k = 0
    while k < len(order) or (minutes and pos < minutes * 60 * RATE):
        i = order[k % len(order)]
        k += 1
        text, voice, wpm = CLIPS[i]
        if i not in synthesised:
            synthesised[i] = _espeak(text, voice, wpm, workdir / f"clip{i}.wav")
        pcm = synthesised[i]
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 200)
        clips.append({"text": text, "voice": voice, "wpm": wpm,
                      "start": (pos + int(loud[0])) / RATE, "end": (pos + int(loud[-1]) + 1) / RATE})
        pieces += [pcm, gap]
        pos += len(pcm) + len(gap)
    return write_wav(workdir / "long.wav", np.concatenate(pieces).tobytes(), RATE), clips


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


# ---------------------------------------------------------------------------------------------
# one condition, in a child process
class CountingModel:
    """Wraps the real recognizer to count the work it is given (load-independent)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.name = inner.name
        self.partial_interval_s = inner.partial_interval_s
        self.min_partial_s = inner.min_partial_s
        self.calls = {"partial": 0, "final": 0}
        self.encoded_s = 0.0

    def __getattr__(self, item):
        return getattr(self._inner, item)

    def transcribe(self, audio, **kw):
        self.calls["partial" if kw.get("partial") else "final"] += 1
        self.encoded_s += len(audio) / RATE
        return self._inner.transcribe(audio, **kw)


def _stream(model, pcm: bytes, paced: bool) -> dict:
    from app.core.engines.local import LocalSession
    from app.core.events import Final, Partial, StreamError
    from app.core.session_config import SessionConfig

    events: list[tuple[float, object]] = []
    counting = CountingModel(model)
    session = LocalSession(SessionConfig(engine="local", silence_ms=SILENCE_MS),
                           lambda e: events.append((time.monotonic(), e)), recognizer=counting)
    session.start(timeout=60)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    feed(session, pcm, paced=paced, step=RATE // 10 * 2)     # 100 ms chunks
    session.stop(timeout=120)
    cpu = time.process_time() - cpu0
    stats = session.stats()
    rows = []
    for at, e in events:
        kind = {Final: "final", Partial: "partial", StreamError: "notice"}.get(type(e))
        if kind is None:
            continue
        rows.append({"t": round(at - t0, 4), "kind": kind, "text": getattr(e, "text", ""),
                     "start": getattr(e, "audio_start", 0) / 1000,
                     "end": getattr(e, "audio_end", 0) / 1000,
                     "message": getattr(e, "message", "")})
    audio_s = len(pcm) / 2 / RATE
    return {"events": rows, "cpu_s": cpu, "audio_s": audio_s, "decode_s": stats.decode_s,
            "partials_skipped": stats.partials_skipped, "dropped_s": stats.audio_dropped_s,
            "calls": counting.calls, "encoded_s": counting.encoded_s}


def child(model_name: str, long_wav: Path, wer_clean: Path | None, wer_noisy: Path | None) -> dict:
    from app.core.engines import models

    os.environ[models.MODEL_ENV] = model_name
    t = time.monotonic()
    model = models.get_recognizer(model_name)
    out = {"model": model.name, "load_s": time.monotonic() - t}
    out["long"] = _stream(model, read_pcm(long_wav), paced=True)
    if wer_clean is not None:
        out["wer_clean"] = _stream(model, read_pcm(wer_clean), paced=False)
        out["wer_noisy"] = _stream(model, read_pcm(wer_noisy), paced=False)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# ---------------------------------------------------------------------------------------------
# analysis
def analyse(run: dict, clips: list[dict]) -> dict:
    from tests.core.engines.speech_refs import normalise
    import jiwer

    events = [e for e in run["events"] if e["kind"] != "notice"]
    notices = [e for e in run["events"] if e["kind"] == "notice"]
    # A "behind" episode lasts from its notice to the "caught up" one (or the end of the run).
    episodes, began = [], None
    for n in notices:
        if "behind real time" in n["message"] and began is None:
            began = n["t"]
        elif "caught up" in n["message"] and began is not None:
            episodes.append(n["t"] - began)
            began = None
    if began is not None:
        episodes.append(run["audio_s"] - began)
    first, final_excess, lags = [], [], []
    live_wrong = live_words = 0
    for c in clips:
        mine = [e for e in events if e["text"] and e["end"] > c["start"] and e["start"] < c["end"] + 0.3]
        ref_words = normalise(c["text"]).split()
        for e in mine:
            if e["kind"] == "partial":
                # All but the last word (it may be cut mid-word): how many are wrong, against the
                # stretch of the clip's text they match best.
                shown = normalise(e["text"]).split()[:-1]
                live_wrong += words_off(shown, ref_words)
                live_words += len(shown)
        if mine:
            first.append(min(e["t"] for e in mine) - c["start"])
        finals = [e for e in mine if e["kind"] == "final"]
        if finals:
            final_excess.append(max(e["t"] for e in finals) - c["end"] - SILENCE_MS / 1000)
        # Live lag: at each 100 ms of speech, how old is the newest audio the shown caption covers.
        t = c["start"] + 0.1
        while t <= c["end"]:
            shown = [e["end"] for e in mine if e["t"] <= t]
            covered = max(shown) if shown else c["start"]
            lags.append(max(0.0, t - max(covered, c["start"])))
            t += 0.1
    finals = [e for e in events if e["kind"] == "final"]
    reference = normalise(" ".join(c["text"] for c in clips))
    hyp = normalise(" ".join(e["text"] for e in finals))
    audio_s = run["audio_s"]
    return {
        "cpu_per_audio_s": run["cpu_s"] / audio_s,
        "rtf": run["decode_s"] / audio_s,
        "decodes_per_audio_s": (run["calls"]["partial"] + run["calls"]["final"]) / audio_s,
        "encoded_per_audio_s": run["encoded_s"] / audio_s,
        "first_p50": percentile(first, 50), "first_p95": percentile(first, 95),
        "lag_p50": percentile(lags, 50), "lag_p95": percentile(lags, 95), "lag_max": max(lags or [0]),
        "final_p50": percentile(final_excess, 50), "final_p95": percentile(final_excess, 95),
        "final_max": max(final_excess or [float("nan")]),
        "behind_notices": sum(1 for n in notices if "behind" in n["message"]),
        "behind_longest_s": max(episodes, default=0.0),
        "partials_skipped": run["partials_skipped"], "dropped_s": run["dropped_s"],
        "finals": len(finals), "wer_long": jiwer.wer(reference, hyp or "<empty>"),
        "live_wrong": live_wrong / live_words if live_words else float("nan"),
    }


def words_off(hyp: list[str], ref: list[str]) -> int:
    """Word edits that turn ``hyp`` into some contiguous stretch of ``ref`` (free ends in ref)."""
    prev = [0] * (len(ref) + 1)                   # hyp empty: any starting point costs nothing
    for i, word in enumerate(hyp, 1):
        cur = [i] + [0] * len(ref)
        for j, r in enumerate(ref, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word != r))
        prev = cur
    return min(prev)


def wer_of(run: dict) -> float:
    import jiwer

    from tests.benchmarks.bench_offline import SENTENCES as WER_SENTENCES
    from tests.core.engines.speech_refs import normalise

    hyp = normalise(" ".join(e["text"] for e in run["events"] if e["kind"] == "final"))
    return jiwer.wer(normalise(" ".join(WER_SENTENCES)), hyp or "<empty>")


def _cpu_busy_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("moonshine", "whisper"), default="moonshine")
    ap.add_argument("--quick", action="store_true", help="4 clips instead of 8")
    ap.add_argument("--minutes", type=float,
                    help="loop the clips until the audio lasts this long (a long run)")
    ap.add_argument("--conditions", default="quiet,contention")
    ap.add_argument("--no-wer", action="store_true", help="skip the espeak WER sets")
    ap.add_argument("--json", type=Path, help="also write the raw events and figures here")
    ap.add_argument("--child", nargs=3, metavar=("LONG", "CLEAN", "NOISY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        clean = None if args.child[1] == "-" else Path(args.child[1])
        noisy = None if args.child[2] == "-" else Path(args.child[2])
        print("JSON " + json.dumps(child(args.model, Path(args.child[0]), clean, noisy)))
        return 0
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            print(f"{tool} is required (bash packaging/dev.sh test installs it)", file=sys.stderr)
            return 2
    from app.core.engines import models
    try:
        models.choose(args.model)
    except models.EngineUnavailable as exc:
        print(f"# {args.model}: skipped ({exc})")
        return 0
    from tests.benchmarks.bench_offline import make_audio

    conditions = [c for c in args.conditions.split(",") if c]
    figures: dict[str, dict] = {}
    raw: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        long_wav, clips = make_long_set(Path(tmp), QUICK if args.quick else range(len(CLIPS)),
                                        args.minutes)
        clean, noisy = make_audio(Path(tmp)) if not args.no_wer else (None, None)
        speech = [c["end"] - c["start"] for c in clips]
        minutes = len(read_pcm(long_wav)) / 2 / RATE / 60
        print(f"# {len(clips)} clips, {minutes:.1f} min of audio, speech "
              f"{min(speech):.1f}-{max(speech):.1f} s each, "
              f"{sum(speech):.0f} s of speech, silence threshold {SILENCE_MS} ms")
        for i, cond in enumerate(conditions):
            busy = _cpu_busy_process() if cond == "contention" else None
            load0, wall0 = os.getloadavg()[0], time.monotonic()
            try:
                cmd = [sys.executable, "-m", "tests.benchmarks.bench_offline_latency", "--model",
                       args.model, "--child", str(long_wav),
                       str(clean) if clean and i == 0 else "-", str(noisy) if noisy and i == 0 else "-"]
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                busy_cpu = _proc_cpu(busy.pid) if busy else 0.0
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            wall = time.monotonic() - wall0
            if proc.returncode != 0:
                print(f"# {cond}: failed\n{proc.stderr[-3000:]}")
                return 1
            run = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")][-1][5:])
            raw[cond] = run
            fig = analyse(run["long"], clips)
            fig["load_before"], fig["load_after"] = load0, os.getloadavg()[0]
            fig["competitor_core_share"] = busy_cpu / wall if busy else 0.0
            fig["peak_rss_mb"] = run["peak_rss_mb"]
            if "wer_clean" in run:
                fig["wer_clean"] = wer_of(run["wer_clean"])
                fig["wer_noisy15"] = wer_of(run["wer_noisy"])
                fig["wer_cpu_per_audio_s"] = run["wer_clean"]["cpu_s"] / run["wer_clean"]["audio_s"]
            figures[cond] = fig
    model_name = next(iter(raw.values()))["model"]
    rows = [
        ("CPU-s per audio-s (engine process)", "cpu_per_audio_s", "{:.3f}", 0.25),
        ("decode time / audio time (RTF)", "rtf", "{:.3f}", 0.5),
        ("decoder calls per audio-s", "decodes_per_audio_s", "{:.2f}", None),
        ("audio encoded per audio-s", "encoded_per_audio_s", "{:.2f}", None),
        ("first live words p50 (s after speech start)", "first_p50", "{:.2f}", 0.5),
        ("first live words p95", "first_p95", "{:.2f}", 1.0),
        ("live lag during speech p50 (s)", "lag_p50", "{:.2f}", None),
        ("live lag during speech p95", "lag_p95", "{:.2f}", 1.0),
        ("live lag during speech max", "lag_max", "{:.2f}", None),
        ("live words wrong (partials, but last word)", "live_wrong", "{:.3f}", None),
        ("final beyond threshold p50 (s)", "final_p50", "{:.2f}", 0.25),
        ("final beyond threshold p95", "final_p95", "{:.2f}", 0.6),
        ("final beyond threshold max", "final_max", "{:.2f}", None),
        ("'behind real time' notices", "behind_notices", "{:d}", 0),
        ("longest 'behind' episode (s)", "behind_longest_s", "{:.2f}", 5.0),
        ("partials skipped / audio dropped s", None, None, None),
        ("finals (clips)", "finals", "{:d}", None),
        ("WER long set", "wer_long", "{:.3f}", None),
        ("WER espeak clean", "wer_clean", "{:.3f}", 0.045),
        ("WER espeak 15 dB noise", "wer_noisy15", "{:.3f}", 0.081),
        ("peak RSS MB", "peak_rss_mb", "{:.0f}", None),
        ("1-min load average before / after", None, None, None),
        ("competing process, share of one core", "competitor_core_share", "{:.2f}", None),
    ]
    print(f"\n== {model_name}, {len(clips)} clips ==")
    print(f"{'':46s}" + "".join(f"{c:>14s}" for c in conditions) + "    target")
    for label, key, fmt, target in rows:
        cells = []
        for c in conditions:
            f = figures[c]
            if label.startswith("partials skipped"):
                cells.append(f"{f['partials_skipped']} / {f['dropped_s']:.1f}")
            elif label.startswith("1-min load"):
                cells.append(f"{f['load_before']:.1f} / {f['load_after']:.1f}")
            elif key in f:
                cells.append(fmt.format(f[key]))
            else:
                cells.append("-")
        print(f"{label:46s}" + "".join(f"{x:>14s}" for x in cells) +
              ("" if target is None else f"    {target}"))
    tag = "moonshine" if "Moonshine" in model_name else "whisper"
    for c in conditions:
        f = figures[c]
        result(f"offline {tag} {c}: CPU-s per audio-s", f["cpu_per_audio_s"], "s/s", 0.25)
        result(f"offline {tag} {c}: first live words p50", f["first_p50"], "s", 0.5)
        result(f"offline {tag} {c}: live lag p95", f["lag_p95"], "s", 1.0)
        result(f"offline {tag} {c}: live words wrong", f["live_wrong"], "", None)
        result(f"offline {tag} {c}: final beyond threshold p95", f["final_p95"], "s", 0.6)
    if args.json:
        args.json.write_text(json.dumps({"clips": clips, "figures": figures, "raw": raw}, indent=1))
    print(f"\nmachine: {os.cpu_count()} cores; the load averages above include this benchmark")
    return 0


if __name__ == "__main__":
    sys.exit(main())
