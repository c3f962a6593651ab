"""Soak benchmark: a long headless session at real time with a network outage every few minutes.

    python -m tests.benchmarks.soak --minutes 60            # the full run
    python -m tests.benchmarks.soak --minutes 2             # a quick check (drops every 30 s)

The headless CLI streams a spoken WAV (espeak-ng sentences, repeated) to the loopback server.
Every ``--drop-every`` seconds the server goes away (stopped: every connection is cut), stays
down for ``--outage-s`` seconds, and comes back on the same port. Printed at the end:

- finals the server sent vs finals in the transcript file (missing, duplicated, out of order);
- reconnect time per outage: from the server being back to the app's new session opening
  (target: max ≤ 2 s), and the gaps the transcript marked;
- RSS of the app process at start and end (and the peak).

Not a pytest test (it takes as long as the audio); exit code 0 when nothing was lost, no
protocol limit was broken and every reconnect took ≤ 2 s after the server was back.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from app.core.transcript import read_transcript
from tests.e2e.transcript_helpers import SCRIPT, start_headless
from tests.loopback import LoopbackServer

SENTENCES = (
    "The quarterly budget review starts at nine tomorrow morning.",
    "Please send the updated slides to everyone before the meeting.",
    "Our customers want captions that are easy to read from across the room.",
    "We will publish the release notes on Thursday afternoon.",
    "Can everyone hear me clearly at the back of the room?",
    "Let us take a short break and continue in ten minutes.",
)
RECONNECT_TARGET_S = 2.0


def make_speech(minutes: float, workdir: Path) -> Path:
    """~``minutes`` of speech at 16 kHz mono: the sentences with pauses, repeated."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        sys.exit("espeak-ng and sox are required")
    parts = []
    gap = workdir / "gap.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(gap), "trim", "0", "1.5"], check=True)
    for i, text in enumerate(SENTENCES):
        raw = workdir / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        fixed = workdir / f"s{i}-16k.wav"
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(fixed)], check=True)
        parts += [str(fixed), str(gap)]
    block = workdir / "block.wav"
    subprocess.run(["sox", *parts, str(block)], check=True)
    block_s = float(subprocess.run(["soxi", "-D", str(block)], capture_output=True, text=True,
                                   check=True).stdout)
    repeats = max(0, round(minutes * 60 / block_s) - 1)
    out = workdir / "soak.wav"
    subprocess.run(["sox", str(block), str(out), "repeat", str(repeats)], check=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """One loopback server at a time on a fixed port; restarted after each outage."""

    def __init__(self, port: int, script: list[str]) -> None:
        self.port = port
        self.script = script
        self.done: list[LoopbackServer] = []
        self.current: LoopbackServer | None = None

    def sent(self) -> list[str]:
        servers = self.done + ([self.current] if self.current else [])
        return [t for s in servers for r in list(s.sessions) for t in list(r.finals)]

    def sessions(self):
        servers = self.done + ([self.current] if self.current else [])
        return [r for s in servers for r in list(s.sessions)]

    def start(self) -> LoopbackServer:
        remaining = self.script[len(self.sent()):]   # finals stay unique across restarts
        for _ in range(100):                         # the old socket may linger a moment
            try:
                self.current = LoopbackServer(port=self.port, script=remaining, rate_grace_s=5.0,
                                              idle_timeout_s=30.0).start()
                return self.current
            except RuntimeError:
                time.sleep(0.05)
        raise RuntimeError(f"could not restart the loopback server on port {self.port}")

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.done.append(self.current)
            self.current = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="length of the audio (default 60)")
    p.add_argument("--drop-every", type=float, default=None,
                   help="seconds between outages (default 300, or a quarter of a run under 20 min)")
    p.add_argument("--outage-s", type=float, default=3.0, help="how long the server stays away (default 3)")
    p.add_argument("--protocol", choices=("v3", "v2"), default="v3")
    p.add_argument("--keep", action="store_true", help="keep the work folder (audio, transcript, logs)")
    args = p.parse_args(argv)
    drop_every = args.drop_every or (300.0 if args.minutes >= 20 else args.minutes * 60 / 4)

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"work folder: {work}", flush=True)
    wav = make_speech(args.minutes, work)
    audio_s = float(subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True).stdout)
    print(f"audio: {audio_s / 60:.1f} min, outage of {args.outage_s:.1f} s every {drop_every:.0f} s, "
          f"protocol {args.protocol}", flush=True)

    script = list(SCRIPT) + [f"Soak caption {i}." for i in range(len(SCRIPT), 20000)]
    servers = Servers(free_port(), script)
    server = servers.start()
    tdir = work / "transcripts"
    stderr_log = open(work / "app-stderr.log", "w")
    stdout_log = open(work / "app-stdout.log", "w")
    proc = start_headless(server.url, server.api_key, wav, tdir, "--protocol", args.protocol, stdout=stdout_log)
    # stderr goes to a file through a pump so a chatty app never blocks on a full pipe
    threading.Thread(target=lambda: shutil.copyfileobj(proc.stderr, stderr_log), daemon=True).start()
    ps = psutil.Process(proc.pid)
    t0 = time.monotonic()
    rss: list[tuple[float, int]] = []
    reconnects: list[float] = []

    def sample() -> None:
        try:
            rss.append((time.monotonic() - t0, ps.memory_info().rss))
        except psutil.Error:
            pass

    server.wait_for(lambda: len(server.sessions) >= 1, timeout=30)
    time.sleep(min(5.0, audio_s / 10))
    sample()
    next_drop = t0 + drop_every
    next_sample = time.monotonic() + 10
    while proc.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            sample()
            next_sample = now + 10
        if now >= next_drop and now - t0 < audio_s - 10:
            servers.stop()
            time.sleep(args.outage_s)
            back = servers.start()
            t_back = time.monotonic()
            if back.wait_for(lambda: len(back.sessions) >= 1, timeout=60):
                reconnects.append(time.monotonic() - t_back)
                print(f"  t={t_back - t0:7.1f} s  outage {args.outage_s:.1f} s, reconnected "
                      f"{reconnects[-1]:.2f} s after the server was back", flush=True)
            else:
                reconnects.append(float("inf"))
                print(f"  t={t_back - t0:7.1f} s  NO reconnect within 60 s", flush=True)
            next_drop = t_back + drop_every
        if now - t0 > audio_s + 120:
            print("the app did not finish within 2 min after the audio ended; stopping it", flush=True)
            proc.terminate()
            break
        time.sleep(0.2)
    proc.wait(timeout=30)
    elapsed = time.monotonic() - t0
    servers.stop()
    stderr_log.close()
    stdout_log.close()

    files = sorted(tdir.glob("*.jsonl"))
    entries = read_transcript(files[0]) if files else []
    saved = [e.text for e in entries if e.kind == "final"]
    sent = servers.sent()
    missing = [t for t in sent if t not in set(saved)]
    dupes = len(saved) - len(set(saved))
    in_order = saved == [t for t in sent if t in set(saved)]
    gaps = [e for e in entries if e.kind == "gap"]
    violations = [v for r in servers.sessions() for v in r.violations]

    print("\n=== soak result ===")
    print(f"run: {elapsed / 60:.1f} min wall clock for {audio_s / 60:.1f} min of audio; app exit code {proc.returncode}")
    print(f"finals sent: {len(sent)}   saved: {len(saved)}   missing: {len(missing)}   duplicated: {dupes}   "
          f"in order: {in_order}")
    print(f"sessions: {len(servers.sessions())}   outages: {len(reconnects)}   "
          f"gaps marked: {len(gaps)} ({sum(g.duration_ms for g in gaps) / 1000:.1f} s)")
    if reconnects:
        finite = [r for r in reconnects if r != float("inf")]
        print(f"reconnect after the server was back: max {max(reconnects):.2f} s, "
              f"median {statistics.median(finite) if finite else float('nan'):.2f} s "
              f"(target ≤ {RECONNECT_TARGET_S:.0f} s)")
    if rss:
        print(f"RSS: start {rss[0][1] / 2**20:.1f} MiB, end {rss[-1][1] / 2**20:.1f} MiB, "
              f"peak {max(r for _, r in rss) / 2**20:.1f} MiB ({len(rss)} samples)")
    print(f"protocol violations: {len(violations)}" + (f" — {violations[:3]}" if violations else ""))
    for t in missing[:5]:
        print(f"  missing: {t}")
    ok = (not missing and not dupes and in_order and not violations and proc.returncode == 0
          and all(r <= RECONNECT_TARGET_S for r in reconnects))
    print("PASS" if ok else "FAIL")
    if not args.keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
