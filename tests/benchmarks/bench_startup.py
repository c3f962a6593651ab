"""Start-up: launch → overlay visible on a real X desktop, and the frozen bundle's size.

Launches ``python -m app`` (the GUI, captions started against the loopback server, settings in a
private XDG_CONFIG_HOME) on a private Xvfb + xcompmgr + openbox, and polls the X server with
``xdotool search --onlyvisible`` for the overlay window ("Live captions") being mapped. The time
from just before ``Popen`` to the first poll that sees it is one sample (poll every ~10 ms, each
poll an xdotool process: resolution ≈ 10-20 ms). Several launches; the first one is reported on
its own (cold-ish caches). Target ≤ 0.6 s (median, quiet machine). The app's bytecode is
compiled first, as an installed package has it (``PYTHONDONTWRITEBYTECODE`` in a developer shell
would otherwise make every launch compile every module).

Bundle: the size of ``dist/caption-overlay`` when it exists (also launched like above), or one
built from ``build.spec`` into a temp dir with ``--bundle`` (~1-3 min; needs PyInstaller).

Run: ``.venv/bin/python -m tests.benchmarks.bench_startup [--runs N] [--bundle]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_screen import ROOT, LoopbackProcess, private_desktop
from tests.benchmarks.common import percentile, result

WINDOW_TITLE = "Live captions"


def write_settings(config_home: Path, values: dict) -> Path:
    """The app's settings.ini, written through the app's own QSettings store (exact INI format)."""
    from app import APP_ID
    from app.qt.settings_store import SETTINGS_FILE, QSettingsStore
    path = config_home / APP_ID / SETTINGS_FILE
    store = QSettingsStore(str(path))
    for key, value in values.items():
        store.set_value(key, value)
    error = store.sync()
    if error:
        raise RuntimeError(error)
    return path


def app_env(desktop_env: dict, work: Path, api_key: str, extra: dict | None = None) -> dict:
    env = {**desktop_env, "XDG_CONFIG_HOME": str(work / "config"), "XDG_DATA_HOME": str(work / "data"),
           "XDG_CACHE_HOME": str(work / "cache"), "ASSEMBLYAI_API_KEY": api_key, "PYTHONUNBUFFERED": "1"}
    env.update(extra or {})
    return env


def overlay_visible(env: dict) -> bool:
    res = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{WINDOW_TITLE}$"],
                         env=env, capture_output=True, text=True, timeout=10)
    return res.returncode == 0 and bool(res.stdout.strip())


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def launch_once(cmd: list[str], env: dict, log_path: Path, timeout: float = 30) -> float | None:
    """Seconds from launch to the overlay window being mapped, or None (timed out / died)."""
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while time.perf_counter() - t0 < timeout:
                if overlay_visible(env):
                    return time.perf_counter() - t0
                if proc.poll() is not None:
                    return None
                time.sleep(0.005)
            return None
        finally:
            stop_process(proc)


def bundle_dir(build: bool, work: Path) -> Path | None:
    existing = ROOT / "dist" / "caption-overlay"
    if existing.is_dir() and not build:
        return existing
    if not build:
        return None
    import importlib.util
    if importlib.util.find_spec("PyInstaller") is None:
        raise SystemExit("--bundle needs PyInstaller (pip install -e '.[package]')")
    dist, build_dir = work / "dist", work / "build"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", str(dist),
                    "--workpath", str(build_dir), "build.spec"], cwd=str(ROOT), check=True, capture_output=True)
    print(f"bundle built in {time.monotonic() - t0:.0f} s")
    return dist / "caption-overlay"


TARGET_MS = 600


def compile_app() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "app")], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6, help="launches (default 6)")
    ap.add_argument("--bundle", action="store_true", help="build the frozen bundle from build.spec and measure it")
    ap.add_argument("--quick", action="store_true", help="3 launches")
    ap.add_argument("--bundle-dir", type=Path, action="append", default=[],
                    help="measure this already built bundle too (repeat to compare bundles side by side)")
    args = ap.parse_args(argv)
    runs = 3 if args.quick else args.runs
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    results = []
    try:
        bundle = bundle_dir(args.bundle, work)
        bundles = ([bundle] if bundle is not None else []) + [Path(b) for b in args.bundle_dir]
        compile_app()
        with private_desktop() as desk, LoopbackProcess() as server:
            write_settings(work / "config", {
                "engine/engine": "assemblyai", "connection/server_url": server.url,
                "app/start_on_launch": True, "overlay/visible": True})
            env = app_env(desk, work, server.api_key)
            # Captions start on launch (from the virtual microphone when there is one; without a
            # sound server the status line shows the error — the overlay is up either way).
            cmd = [sys.executable, "-m", "app"]
            samples = []
            for i in range(runs):
                s = launch_once(cmd, env, work / f"run{i}.log")
                if s is None:
                    print(f"launch {i}: overlay never became visible; log:\n"
                          + (work / f"run{i}.log").read_text()[-2000:])
                    continue
                samples.append(s)
                print(f"launch {i}: overlay visible after {s * 1000:.0f} ms")
            if samples:
                results.append(("launch→overlay visible, first launch", samples[0] * 1000, "ms", TARGET_MS))
                results.append(("launch→overlay visible, median", percentile(samples, 50) * 1000, "ms", TARGET_MS))
                results.append(("launch→overlay visible, worst", max(samples) * 1000, "ms", None))
            for b in bundles:
                frozen = b / "caption-overlay"
                label = f" {b}" if len(bundles) > 1 else ""
                fs = [s for s in (launch_once([str(frozen)], env, work / f"frozen{i}.log")
                                  for i in range(max(2, runs // 2))) if s is not None]
                if fs:
                    print(f"frozen launches{label}: " + ", ".join(f"{s * 1000:.0f} ms" for s in fs))
                    results.append((f"launch→overlay visible (frozen bundle{label}), median",
                                    percentile(fs, 50) * 1000, "ms", TARGET_MS))
        if bundles:
            sys.path.insert(0, str(ROOT / "packaging"))
            from bundle_size import measure
            for b in bundles:
                label = f" {b}" if len(bundles) > 1 else ""
                size = measure(b)
                print(f"bundle {b}:\n  " + "\n  ".join(size.lines(8)))
                results.append((f"frozen bundle size{label} (app, without offline engine)", size.app / 1e6,
                                "MB", None))
                results.append((f"frozen bundle size{label} (total unpacked)", size.total / 1e6, "MB", None))
        else:
            print("no dist/caption-overlay: bundle size not measured (pass --bundle to build one)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value, unit, target in results:
        result(name, value, unit, target)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
