"""How the level bar reads a level: its scale and its steps (no numpy, so the overlay can
import it before anything heavy is loaded)."""

from __future__ import annotations

METER_STEPS = 12             # the level bar moves in steps of 1/12 of its length


def meter_fraction(dbfs: float) -> float:
    """-60…0 dBFS → 0…1 of the level bar."""
    return min(1.0, max(0.0, (dbfs + 60) / 60))


def meter_step(dbfs: float) -> int:
    """Which of the bar's steps a level fills to."""
    return int(meter_fraction(dbfs) * METER_STEPS)
