"""Caption layout cost per update, with and without speaker labels (the overlay's GUI-thread work
between a message and its paint, without Qt): a full screen of history, then partials and finals.

    python -m tests.benchmarks.bench_caption_layout [--updates 3000]
"""

from __future__ import annotations

import argparse
import time

from app.core.captions import CaptionConfig, CaptionModel
from app.core.styles import speaker_colorer, style_from_values
from tests.benchmarks.common import percentile, result

WORDS = "the quarterly budget review starts at nine tomorrow morning please send slides".split()


def run(updates: int, speakers: bool) -> list[float]:
    model = CaptionModel(CaptionConfig(lines=4, clear_after_s=0), measure=lambda t: 11.0 * len(t),
                         width=1100, speaker_color=speaker_colorer(style_from_values({})))
    times = []
    final_id = 0
    for i in range(updates):
        speaker = "ABC"[(i // 8) % 3] if speakers else None
        language = ("es" if (i // 8) % 4 == 1 else "en") if speakers else None
        words = " ".join(WORDS[: 1 + i % len(WORDS)])
        start = time.perf_counter()
        if i % 8 == 7:
            final_id += 1
            model.on_final("system", words.capitalize() + ".", i, speaker=speaker, final_id=final_id,
                           language=language)
        else:
            model.on_partial("system", words, i, speaker=speaker)
        model.lines()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=3000)
    args = ap.parse_args(argv)
    for speakers in (False, True):
        times = run(args.updates, speakers)[200:]      # after the history has filled up
        label = "speakers" if speakers else "no speakers"
        print(f"{label}: layout per update p50 {percentile(times, 50):.3f} ms, p99 "
              f"{percentile(times, 99):.3f} ms, max {max(times):.3f} ms ({len(times)} updates)")
        result(f"caption layout per update p99 ({label})", percentile(times, 99), "ms", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
