"""GUI-thread cost of one caption update in the overlay: partials growing word by word on the
last line, a final every sentence, the real ``CaptionOverlay`` painting into its backing store
(offscreen platform, so no X server or compositor time is counted: those only get smaller when the
repainted area does). Prints the cost per update and where a paint's time goes.

    QT_QPA_PLATFORM=offscreen python -m tests.benchmarks.bench_paint [--updates 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tests.benchmarks.common import percentile, result

WORDS = ("the quarterly budget review starts at nine tomorrow morning please send the slides to "
         "everyone on the team before noon").split()


class _Event:
    def __init__(self, text):
        self.text, self.speaker, self.id, self.language = text, None, None, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=400)
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app.core.settings import DictStore, Settings
    from app.qt.overlay import CaptionOverlay
    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    overlay = CaptionOverlay(Settings(DictStore()))
    overlay.resize(1100, 260)
    overlay.show()
    qapp.processEvents()

    parts: dict[str, list[float]] = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        return wrapper

    painter = overlay.painter
    for name in ("paint_background", "paint_captions", "paint_status", "render_line"):
        setattr(painter, name, timed(name, getattr(painter, name)))
    overlay.paintEvent = timed("paintEvent", overlay.paintEvent)

    per_update = []
    cpu0 = time.process_time()
    for k in range(args.updates):
        n = 1 + k % len(WORDS)
        t = time.perf_counter()
        if n == len(WORDS):
            overlay.on_final("mic", _Event(" ".join(WORDS).capitalize() + "."))
        else:
            overlay.on_partial("mic", _Event(" ".join(WORDS[:n])))
        qapp.processEvents()                     # the paint the update scheduled
        per_update.append((time.perf_counter() - t) * 1000)
    cpu = time.process_time() - cpu0

    print(f"{args.updates} caption updates on a 1100×260 overlay: {cpu * 1000 / args.updates:.2f} ms CPU "
          f"per update; wall p50 {percentile(per_update, 50):.2f} ms, p90 {percentile(per_update, 90):.2f} ms")
    for name, values in parts.items():
        print(f"  {name:17s} ×{len(values):4d}  p50 {percentile(values, 50):.3f} ms  total {sum(values):.0f} ms")
    result("GUI-thread CPU per caption update (offscreen paint)", cpu * 1000 / args.updates, "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
