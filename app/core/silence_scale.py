"""The silence slider's scale: fine steps where people choose, coarse ones beyond. Pure Python.

A linear 0-20000 ms slider made the useful 300-1500 ms range a few pixels wide. Here half of the
slider covers 0-1500 ms in 50 ms steps; the rest climbs to 20 s in growing steps. The number box
next to it still takes any value in range.
"""

from __future__ import annotations

from bisect import bisect_left

from app.core.silence import MAX_MS, MIN_MS


def _stops() -> tuple[int, ...]:
    values = list(range(MIN_MS, 1500, 50))          # 0 … 1450: where people choose
    values += list(range(1500, 3000, 100))
    values += list(range(3000, 10000, 500))
    values += list(range(10000, MAX_MS + 1, 1000))
    return tuple(values)


STOPS = _stops()
USEFUL_RANGE_MS = (300, 1500)


def position_for(ms: int) -> int:
    """Slider position nearest to ``ms`` (clamped to the range)."""
    ms = max(MIN_MS, min(MAX_MS, int(ms)))
    i = bisect_left(STOPS, ms)
    if i == len(STOPS):
        return len(STOPS) - 1
    if i > 0 and ms - STOPS[i - 1] < STOPS[i] - ms:
        return i - 1
    return i


def ms_at(position: int) -> int:
    return STOPS[max(0, min(len(STOPS) - 1, int(position)))]


def share_of_slider(lo: int, hi: int) -> float:
    """How much of the slider's length the range lo…hi ms takes."""
    return (position_for(hi) - position_for(lo)) / (len(STOPS) - 1)
