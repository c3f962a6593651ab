"""CPU and memory: the full GUI app vs the official AssemblyAI SDK v3 client, same audio, same server.

Three runs, one after the other, against one loopback server process (``python -m tests.loopback``)
on a private PulseAudio (16 kHz mono null sink + virtual mic) and a private X desktop:

1. **ours, mic** — ``python -m app`` (overlay, tray, hotkeys, transcript autosave; settings in a
   private XDG_CONFIG_HOME pointing at the server; API key from ASSEMBLYAI_API_KEY) capturing the
   virtual microphone while ``paplay`` speaks N minutes of espeak-ng speech into it: the app as a
   user runs it.
2. **SDK v3** — assemblyai 1.8.x (``.venv-sdk18``) driven by ``tests/loopback/sdk_drivers/v3_sdk18.py``,
   streaming the same WAV at real time (the SDK has no capture of its own without PyAudio; it gets
   the audio for free, so the ratio is conservative for us).
3. **ours, file** — the same GUI app fed the same WAV (``--source file:``), apples to apples with 2.
4. **headless** — ``python -m app --headless --json --source file:WAV`` (no window): the client the
   SDK is really compared with (target ≤ 1.2× the SDK's CPU).
5. **idle** — the GUI app capturing the virtual microphone with nobody speaking (captions started,
   nothing on screen), and the GUI app with captions stopped: % of one core (target ≤ 0.5 %). The
   virtual mic then delivers exact zeros, as a muted microphone or a silent output does; a third
   run plays a quiet room's noise into it (-60 dBFS white noise), as an open microphone in a
   quiet room delivers. The rig's keeper stream clocks the virtual mic at 20 ms (as a call app
   reading the same microphone does); one more run clocks it at 100 ms, the app's own chunk, as
   a microphone that only this app reads.

CPU-seconds are the process's user+system time from the moment audio starts until it ended and
the last final had time to arrive (start-up excluded; start-up is bench_startup's business): the
GUI runs count from the connection to the server, the headless and SDK runs from the session's
Begin message (each client's first sign that the session is open), so both leave out the handshake. RSS is
sampled every 0.5 s (peak reported). Same silence threshold (700 ms), format_turns on, 100 ms
chunks for both clients. Targets: ours ≤ 1.5× the SDK's CPU (the whole GUI app); the headless
client ≤ 1.2× the SDK's; captioning ≤ 3 % of one core (GUI app, cloud path: there is no engine);
idle ≤ 0.5 % of one core; ours RSS ≤ 150 MB.

Run: ``.venv/bin/python -m tests.benchmarks.bench_resources [--minutes 5] [--skip-file]
[--runs mic,sdk,file,headless,idle] [--idle-s 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import psutil

from tests.benchmarks.bench_screen import ROOT, LoopbackProcess, private_desktop
from tests.benchmarks.bench_startup import app_env, overlay_visible, stop_process, write_settings
from tests.benchmarks.common import SENTENCES, result, speech_wav, write_wav

SDK_PYTHON = ROOT / ".venv-sdk18" / "bin" / "python"
SDK_DRIVERS = ROOT / "tests" / "loopback" / "sdk_drivers"
SILENCE_MS = 700
DRAIN_S = 3.0          # after the audio: time for the last final to arrive before CPU is read
IDLE_SETTLE_S = 5.0    # idle runs: after the overlay is up and streaming, before CPU is counted
RUNS = ("mic", "sdk", "file", "headless", "idle")


class Sampler:
    """Peak RSS (and the last value) of one process, sampled on a thread."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                rss = self.proc.memory_info().rss
            except psutil.Error:
                return
            self.samples.append(rss)
            self.peak = max(self.peak, rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def cpu_seconds(proc: psutil.Process) -> float:
    """The process's CPU time from the scheduler's own clock (exact to the nanosecond) where the
    OS has one for another process (Linux); else user+system, which Linux samples at each timer
    tick (250 Hz here): a thread that wakes for 100 µs every 100 ms is charged a whole 4 ms tick
    or nothing, by luck, so small figures from it move by 2× between runs."""
    exact = exact_cpu_seconds(proc.pid)
    if exact is not None:
        return exact
    t = proc.cpu_times()
    return t.user + t.system


def exact_cpu_seconds(pid: int) -> float | None:
    if not sys.platform.startswith("linux"):
        return None
    clock = (~pid << 3) | 2          # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    try:
        return time.clock_gettime(clock)
    except OSError:
        return None


EXACT_CPU = exact_cpu_seconds(os.getpid()) is not None


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """{tid: (thread name as the OS knows it, CPU seconds)} from /proc (Linux): the scheduler's
    exact run time (``se.sum_exec_runtime`` in ``sched``) where the kernel shows it, else the
    tick-sampled user+system of ``stat``."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            comm = (task / "comm").read_text().strip()
            exact = _sum_exec_runtime(task)
            if exact is None:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                exact = (int(fields[11]) + int(fields[12])) / tick
            out[int(task.name)] = (comm, exact)
        except (OSError, ValueError, IndexError):
            continue
    return out


def _sum_exec_runtime(task: Path) -> float | None:
    try:
        text = (task / "sched").read_text()
    except OSError:
        return None
    m = re.search(r"^se\.sum_exec_runtime\s*:\s*([0-9.]+)", text, re.M)
    return float(m.group(1)) / 1000.0 if m else None     # milliseconds there


EXACT_THREAD_CPU = _sum_exec_runtime(Path("/proc/self")) is not None


def py_thread_names(profile: Path | None) -> dict[int, str]:
    names = {}
    if profile is not None and profile.exists():
        for m in re.finditer(r"thread \((\d+)\): ([^;]+);", profile.read_text(errors="replace")):
            names[int(m.group(1))] = m.group(2)
    return names


def print_thread_cpu(before: dict, after: dict, names: dict[int, str], total: float) -> None:
    rows = []
    for tid, (comm, cpu) in after.items():
        delta = cpu - before.get(tid, (comm, 0.0))[1]
        if delta > 0:
            rows.append((delta, names.get(tid) or comm, tid))
    how = "exact" if EXACT_THREAD_CPU else "tick-sampled at 250 Hz: rough for small figures"
    print(f"  CPU by thread while streaming ({how}):")
    for delta, name, tid in sorted(rows, reverse=True)[:10]:
        print(f"    {delta:7.3f} s  {100 * delta / max(total, 1e-9):5.1f} %  {name} ({tid})")


def established_to(proc: psutil.Process, port: int) -> bool:
    try:
        conns = proc.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in conns)


def count_finals(data_home: Path) -> int:
    n = 0
    for path in data_home.rglob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and (rec.get("type") or rec.get("kind") or rec.get("event")) == "final":
                n += 1
    return n


APP_PYTHONPATH = ""      # --app-pythonpath: e.g. a site-packages with another PySide6, first on the app's path
PROFILE_NATIVE = False   # --profile-native: include C/C++ frames (Qt, PortAudio) in the profile


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    spy = ROOT / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        print("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return None
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "200", "--format", "raw", "--threads", *(["--native"] if PROFILE_NATIVE else ["--nonblocking"]),
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(path: Path, top: int = 15) -> None:
    """Self time by function (leaf frame) and by thread, from py-spy's collapsed stacks."""
    from collections import Counter
    leaves, threads, total = Counter(), Counter(), 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        leaves[frames[-1]] += n
    if not total:
        print(f"profile {path.name}: no samples (idle)")
        return
    print(f"profile {path.name}: {total} busy samples; by thread:")
    for name, n in threads.most_common(8):
        print(f"  {100 * n / total:5.1f} %  {name}")
    print("  self time by function:")
    for name, n in leaves.most_common(top):
        print(f"  {100 * n / total:5.1f} %  {name}")


def room_noise_wav(path: Path, seconds: float, dbfs: float = -60.0, rate: int = 16000) -> Path:
    """White noise at ``dbfs`` RMS: what an open microphone in a quiet room delivers."""
    import numpy as np
    rng = np.random.default_rng(7)
    amplitude = 32768.0 * 10 ** (dbfs / 20)
    samples = np.clip(rng.normal(0.0, amplitude, int(seconds * rate)), -32768, 32767).astype("<i2")
    return write_wav(path, samples.tobytes(), rate)


def run_ours(label: str, desk_env: dict, pulse, server: LoopbackProcess, wav: Path | None, audio_s: float,
             work: Path, source: str, profile_dir: Path | None = None, *, idle: bool = False,
             start: bool = True, background: Path | None = None) -> dict:
    """One GUI app run. ``idle``: nobody speaks (``wav`` unused); CPU over ``audio_s`` seconds after
    a settling pause. ``start=False``: captions not started on launch (the app just sits there).
    ``background``: a WAV playing into the mic from before the launch to the end (room noise)."""
    run_dir = work / label
    run_dir.mkdir()
    write_settings(run_dir / "config", {
        "engine/engine": "assemblyai", "connection/protocol": "v3", "connection/server_url": server.url,
        "connection/chunk_ms": 100, "recognition/silence_ms": SILENCE_MS, "audio/source": "mic",
        "app/start_on_launch": start, "overlay/visible": True, "transcript/enabled": True})
    env = app_env(desk_env, run_dir, server.api_key,
                  {"XDG_RUNTIME_DIR": pulse.env["XDG_RUNTIME_DIR"], "PULSE_SERVER": pulse.env["PULSE_SERVER"]})
    if APP_PYTHONPATH:
        env["PYTHONPATH"] = os.pathsep.join([APP_PYTHONPATH, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "app"] + (["--source", source] if source != "mic" else [])
    log = open(run_dir / "app.log", "w")
    noise = pulse.play(background, wait=False) if background is not None else None
    t_launch = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        deadline = time.monotonic() + 60
        while not (overlay_visible(env) and (established_to(ps, port) or not start)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label}: the app did not start streaming; log:\n"
                                   + (run_dir / "app.log").read_text()[-3000:])
            time.sleep(0.1)
        if idle:
            time.sleep(IDLE_SETTLE_S)            # start-up work (first frame, update check) is over
        startup_cpu = cpu_seconds(ps)
        sampler = Sampler(proc.pid)
        cpu0 = cpu_seconds(ps)
        threads0 = thread_cpu(proc.pid)
        t0 = time.monotonic()
        spy = None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            spy = start_profiler(proc.pid, audio_s, profile_dir / f"{source.split(':')[0]}.txt")
        if idle:
            time.sleep(audio_s)
        elif source == "mic":
            time.sleep(1.0)                      # the capture stream is running before we speak
            player = pulse.play(wav, wait=False)   # (play(wait=True) gives up after 120 s)
            while player.poll() is None and proc.poll() is None and time.monotonic() - t0 < audio_s + 60:
                time.sleep(0.2)
            if player.poll() is None:
                player.terminate()
                player.wait(timeout=10)
        else:
            # the file source started with the session: wait for its end
            while time.monotonic() - t0 < audio_s and proc.poll() is None:
                time.sleep(0.2)
        if not idle:
            time.sleep(DRAIN_S)
        if proc.poll() is not None:
            raise RuntimeError(f"{label}: the app died after {time.monotonic() - t0:.0f} s of streaming "
                               f"(exit {proc.returncode}); log:\n"
                               + (run_dir / "app.log").read_text()[-3000:])
        cpu1 = cpu_seconds(ps)
        threads1 = thread_cpu(proc.pid)
        wall = time.monotonic() - t0
        profile = None
        if spy is not None:
            spy.wait(timeout=60)
            profile = profile_dir / f"{source.split(':')[0]}.txt"
            summarise_profile(profile)
        print_thread_cpu(threads0, threads1, py_thread_names(profile), cpu1 - cpu0)
        sampler.stop()
        rss_end = ps.memory_info().rss
    finally:
        stop_process(proc, timeout=30)
        log.close()
        if noise is not None:
            noise.terminate()
            noise.wait(timeout=10)
    finals = count_finals(run_dir / "data")
    out = {"label": label, "cpu_s": cpu1 - cpu0, "wall_s": wall, "rss_peak_mb": sampler.peak / 1e6,
           "rss_end_mb": rss_end / 1e6, "startup_cpu_s": startup_cpu, "finals": finals,
           "launch_to_stream_s": t0 - (t_launch - 0)}
    print(f"{label}: CPU {out['cpu_s']:.2f} s over {wall:.0f} s {'idle' if idle else 'of streaming'} "
          f"({100 * out['cpu_s'] / wall:.1f} % of one core), RSS peak {out['rss_peak_mb']:.0f} MB "
          f"(end {out['rss_end_mb']:.0f} MB), start-up CPU {startup_cpu:.2f} s, {finals} finals saved")
    return out


def run_headless(server: LoopbackProcess, wav: Path, audio_s: float, work: Path,
                 profile_dir: Path | None = None) -> dict:
    """``--headless --json`` fed the WAV (paced at real time, like the SDK driver), no display."""
    run_dir = work / "headless"
    run_dir.mkdir()
    write_settings(run_dir / "config", {
        "engine/engine": "assemblyai", "connection/protocol": "v3", "connection/server_url": server.url,
        "connection/chunk_ms": 100, "recognition/silence_ms": SILENCE_MS, "transcript/enabled": True})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(run_dir),
           "XDG_CONFIG_HOME": str(run_dir / "config"), "XDG_DATA_HOME": str(run_dir / "data"),
           "XDG_CACHE_HOME": str(run_dir / "cache"), "ASSEMBLYAI_API_KEY": server.api_key,
           "PYTHONUNBUFFERED": "1"}
    if APP_PYTHONPATH:
        env["PYTHONPATH"] = APP_PYTHONPATH
    cmd = [sys.executable, "-m", "app", "--headless", "--json", "--source", f"file:{wav}"]
    err = open(run_dir / "stderr.txt", "w")
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    ps = psutil.Process(proc.pid)
    finals = [0]
    marks: dict[str, object] = {}

    def reader():
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if not isinstance(ev, dict):
                continue
            if ev.get("event") == "session_started":
                # The SDK run counts from its Begin too: the handshake is start-up for both.
                marks["threads0"], marks["t0"] = thread_cpu(proc.pid), time.monotonic()
                marks["cpu0"] = cpu_seconds(ps)
            elif ev.get("event") == "session_ended":
                # Terminated by the server: the SDK run stops counting there too (its process
                # exit is not counted, nor is ours: closing the transcript, the interpreter's exit).
                marks["threads1"], marks["cpu1"] = thread_cpu(proc.pid), cpu_seconds(ps)
            elif ev.get("event") == "final":
                finals[0] += 1

    threading.Thread(target=reader, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while "cpu0" not in marks:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("headless: did not start streaming; stderr:\n"
                                   + (run_dir / "stderr.txt").read_text()[-3000:])
            time.sleep(0.02)
        sampler = Sampler(proc.pid)
        cpu0, threads0, t0 = marks["cpu0"], marks["threads0"], marks["t0"]
        startup_cpu = cpu0
        spy = None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            spy = start_profiler(proc.pid, audio_s, profile_dir / "headless.txt")
        # The run ends by itself when the file does: reap it with wait4 to read its whole CPU
        # (poll() would reap it and lose the figure).
        ended, threads1, last = None, threads0, cpu0
        while time.monotonic() - t0 < audio_s + DRAIN_S:
            threads1 = {**threads1, **thread_cpu(proc.pid)}   # threads that ended keep their last figure
            last = cpu_seconds(ps)                            # (exact: its last reading before exit)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                ended = usage.ru_utime + usage.ru_stime
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        cpu1 = last if EXACT_CPU else (ended if ended is not None else cpu_seconds(ps))
        if ended is None:
            threads1 = thread_cpu(proc.pid)
        shutdown_cpu = None
        if "cpu1" in marks:
            shutdown_cpu = cpu1 - marks["cpu1"]
            cpu1, threads1 = marks["cpu1"], {**threads1, **marks["threads1"]}
        profile = None
        if spy is not None:
            spy.wait(timeout=60)
            profile = profile_dir / "headless.txt"
            summarise_profile(profile)
        print_thread_cpu(threads0, threads1, py_thread_names(profile), cpu1 - cpu0)
        sampler.stop()
    finally:
        stop_process(proc, timeout=30)
        err.close()
    out = {"label": "headless", "cpu_s": cpu1 - cpu0, "wall_s": wall, "rss_peak_mb": sampler.peak / 1e6,
           "startup_cpu_s": startup_cpu, "finals": finals[0]}
    print(f"headless: CPU {out['cpu_s']:.2f} s over {wall:.0f} s of streaming "
          f"({100 * out['cpu_s'] / wall:.1f} % of one core), RSS peak {out['rss_peak_mb']:.0f} MB, "
          f"start-up CPU {startup_cpu:.2f} s, {finals[0]} finals"
          + (f", exit after the session ended {shutdown_cpu:.2f} s" if shutdown_cpu is not None else ""))
    return out


def run_sdk(server: LoopbackProcess, wav: Path, audio_s: float, work: Path) -> dict:
    if not SDK_PYTHON.exists():
        raise SystemExit(f"{SDK_PYTHON} is missing: python3 -m venv .venv-sdk18 && "
                         ".venv-sdk18/bin/pip install 'assemblyai>=1.8,<1.9'")
    cfg = {"api_host": server.url.replace("http://", "ws://"), "api_key": server.api_key, "wav": str(wav),
           "rate": 16000, "format_turns": True, "min_turn_silence": SILENCE_MS,
           "max_turn_silence": max(SILENCE_MS, 1280), "chunk_ms": 100}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(SDK_PYTHON), str(SDK_DRIVERS / "v3_sdk18.py"), json.dumps(cfg)],
                            cwd=str(SDK_DRIVERS), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ps = psutil.Process(proc.pid)
    marks: dict[str, float] = {}
    finals = [0]
    errors: list[str] = []
    sampler = Sampler(proc.pid)

    def reader():
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "open":
                marks["cpu0"], marks["t0"] = cpu_seconds(ps), time.monotonic()
                marks["threads0"] = thread_cpu(proc.pid)
            elif kind == "turn" and ev.get("end_of_turn") and ev.get("formatted"):
                finals[0] += 1
            elif kind == "closing":
                marks["threads_closing"] = thread_cpu(proc.pid)   # its threads end with the session
                marks["audio_done"] = time.monotonic()
            elif kind in ("error", "driver_error"):
                errors.append(line.strip()[:500])

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + audio_s + 120
    while "audio_done" not in marks and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if "cpu0" not in marks or "audio_done" not in marks:
        proc.kill()
        raise RuntimeError(f"SDK run failed: {errors} {proc.stderr.read()[-2000:]}")
    # Same accounting as ours: audio start → audio end + drain (the SDK keeps receiving meanwhile).
    time.sleep(max(0.0, DRAIN_S - (time.monotonic() - marks["audio_done"])))
    cpu1 = cpu_seconds(ps)
    threads1 = {**marks.get("threads_closing", {}), **thread_cpu(proc.pid)}
    wall = time.monotonic() - marks["t0"]
    sampler.stop()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    out = {"label": "sdk", "cpu_s": cpu1 - marks["cpu0"], "wall_s": wall, "rss_peak_mb": sampler.peak / 1e6,
           "finals": finals[0], "errors": errors}
    print(f"SDK v3 1.8.x: CPU {out['cpu_s']:.2f} s over {wall:.0f} s of streaming "
          f"({100 * out['cpu_s'] / wall:.1f} % of one core), RSS peak {out['rss_peak_mb']:.0f} MB, "
          f"{finals[0]} formatted finals" + (f", errors: {errors}" if errors else ""))
    print_thread_cpu(marks["threads0"], threads1, {}, out["cpu_s"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="speech to stream (default 5)")
    ap.add_argument("--skip-file", action="store_true", help="skip run 3 (ours fed from the file)")
    ap.add_argument("--quick", action="store_true", help="1 minute, no run 3, 30 s idle")
    ap.add_argument("--runs", default=",".join(RUNS),
                    help=f"which runs, comma-separated (default all: {','.join(RUNS)})")
    ap.add_argument("--idle-s", type=float, default=60.0, help="seconds each idle run is counted (default 60)")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="py-spy our app while it streams (CPU profiles are slightly perturbed) into DIR")
    ap.add_argument("--app-pythonpath", metavar="DIR",
                    help="put DIR first on our app's import path (e.g. a site-packages holding another "
                         "PySide6, or another checkout of the app, to compare)")
    ap.add_argument("--profile-native", action="store_true", help="with --profile: native frames too")
    args = ap.parse_args(argv)
    global PROFILE_NATIVE, APP_PYTHONPATH
    PROFILE_NATIVE = args.profile_native
    APP_PYTHONPATH = args.app_pythonpath or ""
    minutes = 1.0 if args.quick else args.minutes
    idle_s = min(args.idle_s, 30.0) if args.quick else args.idle_s
    wanted = {r.strip() for r in args.runs.split(",") if r.strip()}
    unknown = wanted - set(RUNS)
    if unknown:
        ap.error(f"unknown run(s): {', '.join(sorted(unknown))} (known: {', '.join(RUNS)})")
    if args.skip_file or args.quick:
        wanted.discard("file")
    from tests.fixtures.pulse import PulseServer

    work = Path(tempfile.mkdtemp(prefix="bench-resources-"))
    runs: dict[str, dict] = {}
    try:
        one = speech_wav(work / "one.wav", gap_s=1.0)
        with wave.open(str(one)) as w:
            pass_s = w.getnframes() / w.getframerate()
        repeat = max(1, round(minutes * 60 / pass_s))
        wav = speech_wav(work / "speech.wav", gap_s=1.0, repeat=repeat)
        with wave.open(str(wav)) as w:
            audio_s = w.getnframes() / w.getframerate()
        print(f"speech: {audio_s / 60:.1f} min ({repeat} × {len(SENTENCES)} sentences); "
              f"machine: {psutil.cpu_count()} cores, load {psutil.getloadavg()[0]:.1f}")
        with private_desktop() as desk, PulseServer(16000, 1) as pulse, \
                LoopbackProcess(script=list(SENTENCES) * repeat * 3) as server:
            if "idle" in wanted:
                runs["idle"] = run_ours("ours (GUI, mic, nobody speaking)", desk, pulse, server, None,
                                        idle_s, work, "mic", args.profile and args.profile / "idle", idle=True)
                # The same, with the virtual mic clocked at 100 ms (the app's own chunk) instead of
                # the 20 ms the rig's keeper asks for: a microphone no other app is reading.
                pulse.set_keeper_latency(100)
                try:
                    runs["idle_alone"] = run_ours("ours (GUI, mic alone at 100 ms, nobody speaking)", desk,
                                                  pulse, server, None, idle_s, work, "mic",
                                                  args.profile and args.profile / "alone", idle=True)
                finally:
                    pulse.set_keeper_latency(20)
                noise = room_noise_wav(work / "room.wav", idle_s + 90)
                runs["idle_room"] = run_ours("ours (GUI, mic, quiet room noise)", desk, pulse, server,
                                             None, idle_s, work, "mic", args.profile and args.profile / "room",
                                             idle=True, background=noise)
                runs["idle_stopped"] = run_ours("ours (GUI, captions stopped)", desk, pulse, server, None,
                                                idle_s, work, "mic", args.profile and args.profile / "stopped",
                                                idle=True, start=False)
            if "mic" in wanted:
                runs["mic"] = run_ours("ours (GUI, virtual mic)", desk, pulse, server, wav, audio_s, work,
                                       "mic", args.profile)
            if "sdk" in wanted:
                runs["sdk"] = run_sdk(server, wav, audio_s, work)
            if "headless" in wanted:
                runs["headless"] = run_headless(server, wav, audio_s, work, args.profile)
            if "file" in wanted:
                runs["file"] = run_ours("ours (GUI, same WAV file)", desk, pulse, server, wav, audio_s, work,
                                        f"file:{wav}", args.profile)
        load_after = psutil.getloadavg()[0]
        print(f"load average after: {load_after:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_min = 60.0 / audio_s
    sdk = runs.get("sdk")
    for key, name in (("mic", "ours (GUI, mic)"), ("file", "ours (GUI, file)"), ("headless", "headless")):
        if key in runs:
            run = runs[key]
            result(f"CPU per minute of speech, {name}", run["cpu_s"] * per_min, "s", None)
            if key != "headless":
                # The cloud path has no engine: all of it is the GUI app's own captioning cost.
                result(f"captioning CPU, {name}", 100 * run["cpu_s"] / run["wall_s"], "% of a core", 3.0)
            if sdk is not None:
                result(f"CPU ratio {name} / SDK", run["cpu_s"] / sdk["cpu_s"], "×",
                       1.2 if key == "headless" else 1.5)
    if sdk is not None:
        result("CPU per minute of speech, SDK v3 1.8 (no GUI, file)", sdk["cpu_s"] * per_min, "s", None)
        result("RSS peak, SDK v3 1.8", sdk["rss_peak_mb"], "MB", None)
    if "mic" in runs:
        result("RSS peak, ours (GUI, mic)", runs["mic"]["rss_peak_mb"], "MB", 150)
    for key, name in (("idle", "nobody speaking"), ("idle_alone", "nobody speaking, mic read only by it"),
                      ("idle_room", "nobody speaking, room noise"), ("idle_stopped", "captions stopped")):
        if key in runs:
            result(f"idle CPU, GUI ({name})", 100 * runs[key]["cpu_s"] / runs[key]["wall_s"], "% of a core", 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
