"""Longest GUI-thread stall while Settings → Apply restarts captions against a slow server.

The server stops answering mid-session (it never sends the Termination the client waits for), so
stopping the old session takes the client's whole stop timeout. Apply (a setting that needs a
new session) and Stop are pressed while that happens; a 1 ms timer on the GUI thread measures
the longest gap between its ticks. Target: no stall longer than one frame (16 ms).

    python -m tests.benchmarks.bench_apply_stall [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import percentile, result, speech_wav

FRAME_MS = 16.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.core.credentials import Secret
    from app.core.settings import DictStore, Settings
    from app.qt.controller import Controller
    from tests.loopback import LoopbackServer

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    wav = speech_wav(work / "speech.wav", repeat=3)
    server = LoopbackServer(api_keys=("bench-key",), script=["Caption."] * 200).start()
    try:
        settings = Settings(DictStore({"engine/engine": "assemblyai", "connection/server_url": server.url,
                                       "transcript/enabled": False}))
        controller = Controller(settings, overrides={"source": f"file:{wav}"},
                                transcript_dir=work / "t", key_loader=lambda: Secret("bench-key"))
        clock = QElapsedTimer()
        gaps: list[float] = []
        last = [0]

        def tick():
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        def wait(predicate, timeout_s):
            deadline = time.monotonic() + timeout_s
            while not predicate() and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.001)
            return predicate()

        stalls = {"apply": [], "stop": []}
        returned = {"apply": [], "stop": []}
        idle: list[float] = []
        for round_no in range(args.rounds):
            for action in ("apply", "stop"):
                server.inject(stall_after_ms=1500)       # this session goes silent after 1.5 s
                controller.start()
                if not wait(lambda: len(server.sessions) > 0 and controller.status.state.value == "live", 20):
                    raise SystemExit(f"captions did not start: {controller.status.summary()}")
                time.sleep(2.0)                           # the server is now stalled
                timer = QTimer(interval=1)
                timer.timeout.connect(tick)
                gaps.clear()
                clock.start()
                last[0] = 0
                timer.start()
                wait(lambda: False, 0.5)                  # idle: the machine's own noise
                idle.append(max(gaps[20:], default=0))
                started = clock.elapsed()
                if action == "apply":
                    settings.set("connection/speech_model", "universal-streaming-multilingual"
                                 if round_no % 2 == 0 else "universal-streaming-english")
                    controller.apply_settings({"connection/speech_model"})
                else:
                    controller.stop()
                pressed_ms = clock.elapsed() - started
                sessions_before = len(server.sessions)
                # Keep the loop turning through the stop and, for Apply, the new session's start.
                if action == "apply":
                    wait(lambda: len(server.sessions) > sessions_before
                         and controller.status.state.value == "live", 15)
                else:
                    wait(lambda: not controller.running, 15)
                wait(lambda: False, 0.3)
                timer.stop()
                during = gaps[len(gaps) - int((clock.elapsed() - started)):] if gaps else []
                worst = max(during + [pressed_ms])
                stalls[action].append(worst)
                returned[action].append(pressed_ms)
                print(f"round {round_no + 1} {action}: the call returned in {pressed_ms} ms, "
                      f"longest GUI-thread gap {worst:.0f} ms (idle just before: {idle[-1]:.0f} ms)",
                      flush=True)
                controller.stop()
                wait(lambda: not controller.running, 15)
        controller.shutdown()
    finally:
        server.stop()
    load = os.getloadavg()[0]
    print(f"load average while measuring: {load:.2f} on {os.cpu_count()} cores")
    result("GUI-thread gap with nothing happening (machine noise), max", max(idle), "ms")
    for action, values in stalls.items():
        result(f"{action} call returns after, max", max(returned[action]), "ms", FRAME_MS)
        result(f"GUI-thread stall during {action} (slow server), max", max(values), "ms", FRAME_MS)
        result(f"GUI-thread stall during {action} (slow server), median", percentile(values, 50),
               "ms", FRAME_MS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
