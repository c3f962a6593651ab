"""Caption sharing: final → text visible in a real browser, and the CPU cost of 20 viewers.

1. Chromium (headless, Debian's) opens the caption page; each final is handed to the share and
   the page records, with a MutationObserver and the next animation frame, when its text is on
   screen. Browser and Python read the same wall clock (``performance.timeOrigin + now()``).
2. CPU of this process (``process_time``: server loop + the feeding thread) over the same
   captioning load — a partial every 100 ms, a final every 2 s — with no viewer, then with
   20 viewers (10 SSE + 10 WebSocket, in a separate process so their own CPU is not counted).
   The difference is the cost of the viewers, as a share of one core.

    python -m tests.benchmarks.bench_sharing [--finals 150] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time

from app.core.events import Final, Partial
from app.core.sharing import CaptionShare, ShareConfig
from tests.benchmarks.common import percentile, result

OBSERVER = """
window.__seen = {};
const box = document.getElementById('captions');
new MutationObserver(() => {
  const t = performance.timeOrigin + performance.now();
  for (const el of box.querySelectorAll('.final')) {
    const k = el.textContent;
    if (k.startsWith('bench ') && !(k in window.__seen)) {
      window.__seen[k] = t;
      requestAnimationFrame(() => { window.__seen[k] = performance.timeOrigin + performance.now(); });
    }
  }
}).observe(box, {childList: true, subtree: true, characterData: true});
"""

VIEWERS = textwrap.dedent("""
    import http.client, json, sys, threading
    from websockets.sync.client import connect
    port, n_sse, n_ws = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    counts = [0] * (n_sse + n_ws)
    ready = threading.Barrier(n_sse + n_ws + 1)
    def sse(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", "/events"); r = c.getresponse(); ready.wait()
        for line in r.fp:
            if line.startswith(b"data: "):
                counts[i] += 1
    def ws(i):
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30) as s:
            ready.wait()
            for _ in iter(lambda: s.recv(timeout=120), None):
                counts[i] += 1
    for i in range(n_sse):
        threading.Thread(target=sse, args=(i,), daemon=True).start()
    for i in range(n_ws):
        threading.Thread(target=ws, args=(n_sse + i,), daemon=True).start()
    ready.wait(); print("ready", flush=True)
    sys.stdin.readline(); print(json.dumps(counts), flush=True)
""")


def browser_latency(n_finals: int, interval_s: float) -> list[float]:
    from tests.sharing.browser import browser_missing, start_chromium
    missing = browser_missing()
    if missing:
        raise SystemExit(missing)
    share = CaptionShare(ShareConfig(serve=True, port=0)).start()
    driver = start_chromium()
    try:
        driver.get(share.url)
        deadline = time.monotonic() + 20
        while driver.execute_script("return document.getElementById('state').textContent") != "Live":
            if time.monotonic() > deadline:
                raise SystemExit("the caption page did not connect")
            time.sleep(0.05)
        driver.execute_script(OBSERVER)
        sent = {}
        for i in range(n_finals):
            text = f"bench {i} the quick brown fox jumps over the lazy dog"
            share.on_event("mic", Partial(text[:20], i, i + 1))
            time.sleep(interval_s / 2)
            sent[text] = time.time() * 1000
            share.on_event("mic", Final(text, i, i + 1))
            time.sleep(interval_s / 2)
        time.sleep(0.5)
        seen = driver.execute_script("return window.__seen")
    finally:
        driver.quit()
        share.stop(timeout_s=3)
    missing = [k for k in sent if k not in seen]
    if missing:
        raise SystemExit(f"{len(missing)} finals never appeared in the browser")
    return [seen[k] - sent[k] for k in sent]


def cpu_run(seconds: float, viewers: tuple[int, int]) -> tuple[float, list[int] | None, int]:
    share = CaptionShare(ShareConfig(serve=True, port=0, max_clients=64)).start()
    proc = None
    try:
        if sum(viewers):
            proc = subprocess.Popen([sys.executable, "-c", VIEWERS, str(share.server.port),
                                     str(viewers[0]), str(viewers[1])],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("viewer process failed")
        events = 0
        t_wall, t_cpu = time.monotonic(), time.process_time()
        tick = 0
        while time.monotonic() - t_wall < seconds:
            tick += 1
            words = " ".join(["word"] * (tick % 20 + 1))
            if tick % 20 == 0:
                share.on_event("mic", Final(f"Final caption number {tick} {words}.", tick, tick + 1))
            else:
                share.on_event("mic", Partial(f"caption {words}", tick, tick + 1))
            events += 1
            time.sleep(0.1)
        time.sleep(0.3)     # the last events leave the loop
        cpu = time.process_time() - t_cpu
        wall = time.monotonic() - t_wall
        counts = None
        if proc is not None:
            out, _ = proc.communicate("done\n", timeout=30)
            import json
            counts = json.loads(out.strip().splitlines()[-1])
        return cpu / wall, counts, events
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        share.stop(timeout_s=3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--finals", type=int, default=150)
    ap.add_argument("--interval", type=float, default=0.06, help="seconds between finals")
    ap.add_argument("--seconds", type=float, default=20.0, help="each CPU run")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.finals, args.seconds = 60, 8.0
    print(f"load average at start: {os.getloadavg()}")

    lat = browser_latency(args.finals, args.interval)
    print(f"final → visible in Chromium over {len(lat)} finals: p50 {percentile(lat, 50):.1f} ms, "
          f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms")

    base, _, _ = cpu_run(args.seconds, (0, 0))
    loaded, counts, events = cpu_run(args.seconds, (10, 10))
    complete = all(c >= events for c in counts or [])
    print(f"CPU of the sharing process, {args.seconds:g} s of captions ({events} events): "
          f"no viewers {base * 100:.2f} % of a core, 20 viewers {loaded * 100:.2f} %; "
          f"every viewer got every event: {complete} (min {min(counts)}, sent {events})")
    print(f"load average at end: {os.getloadavg()}")
    result("sharing final→visible p50 (Chromium)", percentile(lat, 50), "ms")
    result("sharing final→visible p99 (Chromium)", percentile(lat, 99), "ms", 100)
    result("sharing 20 viewers extra CPU", (loaded - base) * 100, "% of a core", 5)
    if not complete:
        raise SystemExit("a viewer missed events")


if __name__ == "__main__":
    main()
