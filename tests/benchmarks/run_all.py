"""Run every benchmark, each in its own process, and print one table: measurement | value | target | met?

    .venv/bin/python -m tests.benchmarks.run_all            # full run (~20 min: 2×5 min of CPU runs)
    .venv/bin/python -m tests.benchmarks.run_all --quick    # shorter audio everywhere (~6 min)
    .venv/bin/python -m tests.benchmarks.run_all --only screen,startup --markdown table.md

Benchmarks print ``RESULT {json}`` lines (tests/benchmarks/common.py); for the two that print
their own formats (bench_capture's text, bench_offline's ``JSON [...]`` line) the rows are parsed
here. A benchmark that fails is listed with its exit code and the tail of its output; the others
still run. Exit code: 0 if every benchmark ran (targets missed or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Bench:
    key: str
    module: str
    full: list[str]
    quick: list[str]
    timeout_s: float


BENCHES = [
    Bench("client", "tests.benchmarks.bench_client_latency", ["--seconds", "30"], ["--seconds", "10"], 300),
    Bench("capture", "tests.benchmarks.bench_capture", ["--seconds", "60"], ["--seconds", "15"], 300),
    Bench("screen", "tests.benchmarks.bench_screen", ["--protocol", "v3"], ["--quick", "--protocol", "v3"], 600),
    Bench("screen-v2", "tests.benchmarks.bench_screen", ["--protocol", "v2"], ["--quick", "--protocol", "v2"], 600),
    Bench("startup", "tests.benchmarks.bench_startup", [], ["--quick"], 300),
    Bench("apply-stall", "tests.benchmarks.bench_apply_stall", ["--rounds", "5"], ["--rounds", "1"], 300),
    Bench("settings-keyring", "tests.benchmarks.bench_settings_keyring", ["--rounds", "3"], ["--rounds", "1"], 300),
    Bench("resources", "tests.benchmarks.bench_resources", ["--minutes", "5"], ["--quick"], 2400),
    Bench("sharing", "tests.benchmarks.bench_sharing", [], ["--quick"], 300),
    Bench("offline", "tests.benchmarks.bench_offline", ["--model", "all"], ["--model", "moonshine"], 1200),
    Bench("offline-latency", "tests.benchmarks.bench_offline_latency", [], ["--quick", "--no-wer"], 1200),
    Bench("hostile", "tests.benchmarks.bench_hostile", ["--runs", "5"], ["--runs", "2"], 300),
]


def parse_results(key: str, out: str) -> list[dict]:
    rows = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            try:
                rows.append(json.loads(line[len("RESULT "):]))
            except ValueError:
                pass
    if key == "capture" and not rows:
        m = re.search(r"capture → frame-sent latency: p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
        if m:
            rows.append(_row("capture→frame sent p50 (v3, 48 kHz mic)", float(m.group(1)), "ms", None))
            rows.append(_row("capture→frame sent p99 (v3, 48 kHz mic)", float(m.group(2)), "ms", 2.0))
        m = re.search(r"CPU \(capture \+ conversion \+ client, this process\): ([\d.]+) s per minute", out)
        if m:
            rows.append(_row("CPU per minute, capture+client without GUI", float(m.group(1)), "s", None))
    if key == "offline" and not rows:
        line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("JSON ")), None)
        for r in json.loads(line[5:]) if line else []:
            c, n, name = r["clean"], r["noisy15"], r["model"]
            rows.append(_row(f"offline {name}: RTF (decode/audio)", c["rtf_decode"], "×", 1.0))
            if "latency_mean_s" in c:
                rows.append(_row(f"offline {name}: end of speech→final, mean", c["latency_mean_s"] * 1000, "ms", None))
                rows.append(_row(f"offline {name}: end of speech→final, max", c["latency_max_s"] * 1000, "ms", None))
            rows.append(_row(f"offline {name}: WER clean", c["wer"], "", None))
            rows.append(_row(f"offline {name}: WER noisy 15 dB", n["wer"], "", None))
            rows.append(_row(f"offline {name}: peak RSS", r["peak_rss_mb"], "MB", None))
    return rows


def _row(name, value, unit, target, better="lower") -> dict:
    return {"name": name, "value": round(float(value), 3), "unit": unit, "target": target, "better": better}


def met(row: dict) -> str:
    target, value = row.get("target"), row.get("value")
    if target is None:
        return ""
    if value is None or value != value:   # NaN
        return "n/a"
    ok = value <= target if row.get("better", "lower") == "lower" else value >= target
    return "yes" if ok else "NO"


def fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and abs(value) >= 100:
        text = f"{value:.0f}"
    elif isinstance(value, float) and abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def table(rows: list[dict]) -> str:
    head = ("measurement", "value", "target", "met?")
    cells = [(r["name"], fmt(r["value"], r["unit"]),
              "" if r.get("target") is None else ("≤ " if r.get("better", "lower") == "lower" else "≥ ")
              + fmt(float(r["target"]), r["unit"]), met(r)) for r in rows]
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) if cells else len(head[i]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths)) + " |" for cell in cells]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter audio everywhere")
    ap.add_argument("--only", help="comma-separated subset: " + ",".join(b.key for b in BENCHES))
    ap.add_argument("--markdown", type=Path, help="also write the table (and failures) to this file")
    ap.add_argument("--verbose", action="store_true", help="echo every benchmark's output")
    args = ap.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else {b.key for b in BENCHES}
    unknown = wanted - {b.key for b in BENCHES}
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    rows: list[dict] = []
    failures: list[str] = []
    started = dt.datetime.now(dt.timezone.utc)
    load0 = os.getloadavg()[0]
    for bench in (b for b in BENCHES if b.key in wanted):
        cmd = [sys.executable, "-m", bench.module, *(bench.quick if args.quick else bench.full)]
        print(f"== {bench.key}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=bench.timeout_s)
            out, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            code = "timeout"
        got = parse_results(bench.key, out)
        for line in out.splitlines():
            if args.verbose or not line.startswith("RESULT "):
                if args.verbose or not line.startswith(("JSON ", "RESULT ")):
                    print("   " + line)
        print(f"   ({time.monotonic() - t0:.0f} s, exit {code}, {len(got)} results)", flush=True)
        if code != 0 or not got:
            failures.append(f"{bench.key}: exit {code}, {len(got)} results\n" + "\n".join(out.splitlines()[-15:]))
        rows += got
    text = table(rows)
    summary = (f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average {load0:.1f} → "
               f"{os.getloadavg()[0]:.1f}{' (quick)' if args.quick else ''}")
    print("\n" + summary + "\n" + text)
    if failures:
        print("\nFAILED:\n" + "\n\n".join(failures))
    if args.markdown:
        args.markdown.write_text(summary + "\n\n" + text + "\n" +
                                 ("\nFailed:\n```\n" + "\n\n".join(failures) + "\n```\n" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
