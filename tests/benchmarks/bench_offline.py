"""Offline engine benchmark (not a test): real-time factor, final latency, WER clean / noisy, RSS.

    .venv/bin/python -m tests.benchmarks.bench_offline            # every installed model
    .venv/bin/python -m tests.benchmarks.bench_offline --model moonshine --no-realtime

Each model runs in its own process (so peak RSS is that model's). Audio: 10 meeting sentences by
espeak-ng (en-us, 150 wpm) joined by 1 s pauses (~55 s), 16 kHz mono, plus the same mixed with
pink noise at 15 dB SNR by sox. The clean file is fed to a LocalSession in 100 ms chunks at real
time (chunk k sent at T0 + (k+1)·0.1 s): final latency = arrival − (T0 + final.audio_end), i.e.
end of speech → final on screen, including up to 100 ms chunk quantisation and the 500 ms silence
threshold. RTF = decode time / audio time (one decoder thread). Noisy WER is measured by feeding
the file as fast as the engine takes it (finals are never skipped, so WER does not depend on pace).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "Good morning everyone, thanks for joining the weekly product meeting.",
    "The quarterly budget review starts at nine tomorrow morning.",
    "Please send the updated slides to everyone before the meeting.",
    "Our customers want captions that are easy to read from across the room.",
    "We shipped the new release on Tuesday and the feedback has been positive.",
    "The support team answered more than two hundred tickets last week.",
    "Let us schedule a follow up call with the design team on Friday.",
    "The marketing plan needs a clear budget and a realistic timeline.",
    "Could you share the notes from yesterday's customer interview?",
    "We will review the hiring plan at the end of the month.",
]
SILENCE_MS = 500


def make_audio(workdir: Path) -> tuple[Path, Path]:
    parts = []
    for i, text in enumerate(SENTENCES):
        raw = workdir / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        conv = workdir / f"s{i}-16k.wav"
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(conv)], check=True)
        parts.append(str(conv))
    gap = workdir / "gap.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(gap), "trim", "0", "1.0"], check=True)
    seq = []
    for p in parts:
        seq += [p, str(gap)]
    clean = workdir / "clean.wav"
    subprocess.run(["sox", *seq[:-1], str(clean), "pad", "0.5", "1.5"], check=True)
    # Pink noise (sox -R: the same noise every run) 15 dB below the speech level (RMS of speech only).
    with wave.open(str(clean)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        seconds = w.getnframes() / w.getframerate()
    speech_rms = np.sqrt(np.mean(np.square(x[np.abs(x) > 300])))
    noise = workdir / "noise.wav"
    subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise), "synth",
                    f"{seconds}", "pinknoise", "vol", "0.1"], check=True)
    with wave.open(str(noise)) as w:
        n = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    gain = speech_rms / 10 ** (15 / 20) / np.sqrt(np.mean(np.square(n)))
    noisy = workdir / "noisy15.wav"
    subprocess.run(["sox", "-m", "-v", "1", str(clean), "-v", f"{gain:.4f}", str(noise), str(noisy)], check=True)
    return clean, noisy


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def run_one(model: str, clean: Path, noisy: Path, realtime: bool) -> dict:
    """In the child process: load, stream, measure."""
    import jiwer
    import psutil

    from app.core.engines import models
    from app.core.engines.local import LocalSession
    from app.core.events import Final, Partial
    from app.core.session_config import SessionConfig
    from tests.core.engines.speech_refs import normalise
    from tests.benchmarks.common import feed

    os.environ[models.MODEL_ENV] = model              # every LocalSession picks this model
    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    t = time.monotonic()
    models.get_recognizer(model)
    load_s = time.monotonic() - t
    rss_loaded = proc.memory_info().rss
    reference = normalise(" ".join(SENTENCES))

    def stream(path: Path, paced: bool) -> dict:
        pcm = read_pcm(path)
        events: list[tuple[float, object]] = []
        session = LocalSession(SessionConfig(engine="local", silence_ms=SILENCE_MS), 
                               lambda e: events.append((time.monotonic(), e)))
        session.start(timeout=60)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        feed(session, pcm, paced=paced)                 # 100 ms chunks
        session.stop(timeout=60)
        cpu = time.process_time() - cpu0
        stats = session.stats()
        finals = [(at, e) for at, e in events if isinstance(e, Final)]
        partials = [(at, e) for at, e in events if isinstance(e, Partial)]
        hyp = normalise(" ".join(e.text for _, e in finals))
        out = {"wer": round(jiwer.wer(reference, hyp), 3), "finals": len(finals),
               "audio_s": round(stats.audio_s, 1), "rtf_decode": round(stats.realtime_factor, 3),
               "rtf_cpu": round(cpu / stats.audio_s, 3), "partials_skipped": stats.partials_skipped,
               "text": " | ".join(e.text for _, e in finals)}
        if paced:
            lat = [at - t0 - e.audio_end / 1000 for at, e in finals]
            out["latency_mean_s"] = round(statistics.mean(lat), 2)
            out["latency_max_s"] = round(max(lat), 2)
            # first partial after each utterance start, and partial update interval
            firsts, gaps = [], []
            for _, f in finals:
                mine = [(at, p) for at, p in partials if p.audio_start == f.audio_start]
                if mine:
                    firsts.append(mine[0][0] - t0 - f.audio_start / 1000)
                    gaps += [b[0] - a[0] for a, b in zip(mine, mine[1:])]
            out["first_partial_s"] = round(statistics.mean(firsts), 2) if firsts else None
            out["partial_interval_s"] = round(statistics.mean(gaps), 2) if gaps else None
        return out

    result = {"model": models.get_recognizer(model).name, "load_s": round(load_s, 2),
              "rss_loaded_mb": round(rss_loaded / 1e6), "rss_model_mb": round((rss_loaded - rss_before) / 1e6)}
    result["clean"] = stream(clean, paced=realtime)
    result["noisy15"] = stream(noisy, paced=False)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("moonshine", "whisper", "all"), default="all")
    ap.add_argument("--no-realtime", action="store_true", help="skip the real-time paced run (no latency)")
    ap.add_argument("--child", nargs=2, metavar=("CLEAN", "NOISY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.model, Path(args.child[0]), Path(args.child[1]), not args.no_realtime)))
        return 0
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            print(f"{tool} is required", file=sys.stderr)
            return 2
    from app.core.engines import models
    wanted = ["moonshine", "whisper"] if args.model == "all" else [args.model]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        clean, noisy = make_audio(Path(tmp))
        results = []
        for name in wanted:
            try:
                models.choose(name)
            except models.EngineUnavailable as exc:
                print(f"# {name}: skipped ({exc})")
                continue
            cmd = [sys.executable, "-m", "tests.benchmarks.bench_offline", "--model", name,
                   "--child", str(clean), str(noisy)] + (["--no-realtime"] if args.no_realtime else [])
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
            if proc.returncode != 0:
                print(f"# {name}: failed\n{proc.stderr[-2000:]}")
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        c, n = r["clean"], r["noisy15"]
        print(f"\n== {r['model']} ==")
        print(f"load {r['load_s']} s (incl. warm-up), RSS after load {r['rss_loaded_mb']} MB "
              f"(model {r['rss_model_mb']} MB), peak RSS {r['peak_rss_mb']} MB")
        print(f"audio {c['audio_s']} s: WER clean {c['wer']:.3f}, noisy 15 dB {n['wer']:.3f}")
        print(f"RTF (decode time / audio) {c['rtf_decode']}, process CPU / audio {c['rtf_cpu']}, "
              f"partials skipped {c['partials_skipped']}")
        if "latency_mean_s" in c:
            print(f"end of speech -> final: mean {c['latency_mean_s']} s, max {c['latency_max_s']} s "
                  f"(silence threshold {SILENCE_MS} ms)")
            print(f"first partial {c['first_partial_s']} s after speech start, then every "
                  f"{c['partial_interval_s']} s")
        print(f"clean finals: {c['text']}")
    print(f"\nmachine: {os.cpu_count()} cores, 1-minute load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (times are only comparable at similar load)")
    print("\nJSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
