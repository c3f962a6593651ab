"""Window geometry for the overlay and the app's dialogs: plain ``(x, y, w, h)`` tuples. Pure Python.

The overlay is docked (centred at the bottom/top of a screen) or floating (where the user put it);
a saved rectangle is always clamped onto a screen that still exists. Dialogs are placed clear of
the overlay, because an always-on-top overlay would otherwise sit over their buttons.
"""

from __future__ import annotations

from typing import Iterable, Sequence

Rect = tuple[int, int, int, int]

DOCKS = ("bottom", "top", "floating")
DOCK_MARGIN = 48            # logical px between a docked overlay and the screen edge
MIN_SIZE = (240, 60)
DIALOG_GAP = 12             # px between a dialog and the overlay it steps around


def parse_geometry(text: str) -> Rect | None:
    """``"x,y,w,h"`` → tuple; None for anything unusable (the dock preset is used instead)."""
    try:
        x, y, w, h = (int(float(p)) for p in str(text).split(","))
    except (ValueError, TypeError):
        return None
    if w <= 0 or h <= 0:
        return None
    return x, y, w, h


def format_geometry(rect: Sequence[int]) -> str:
    return ",".join(str(int(v)) for v in rect)


def clamp_rect(rect: Sequence[int], area: Sequence[int], min_size: tuple[int, int] = MIN_SIZE) -> Rect:
    """Move/shrink ``rect`` so it lies fully inside ``area`` (a screen's available geometry)."""
    x, y, w, h = rect
    ax, ay, aw, ah = area
    w = max(min(w, aw), min(min_size[0], aw))
    h = max(min(h, ah), min(min_size[1], ah))
    x = min(max(x, ax), ax + aw - w)
    y = min(max(y, ay), ay + ah - h)
    return x, y, w, h


def dock_position(size: Sequence[int], area: Sequence[int], dock: str) -> tuple[int, int]:
    """Top-left for a docked overlay of ``size`` centred at the bottom/top of ``area``."""
    w, h = size
    ax, ay, aw, ah = area
    x = ax + (aw - w) // 2
    margin = min(DOCK_MARGIN, max(0, (ah - h) // 2))
    y = ay + ah - h - margin if dock == "bottom" else ay + margin
    return x, y


def dock_rect(size: Sequence[int], area: Sequence[int], dock: str) -> Rect:
    """The rectangle of an overlay of ``size`` docked in ``area`` (shrunk to fit it)."""
    w, h = clamp_rect((0, 0, *size), area)[2:]
    x, y = dock_position((w, h), area, dock)
    return x, y, w, h


def centre(rect: Sequence[int]) -> tuple[int, int]:
    x, y, w, h = rect
    return x + w // 2, y + h // 2


def contains_point(rect: Sequence[int], point: Sequence[int]) -> bool:
    x, y, w, h = rect
    px, py = point
    return x <= px < x + w and y <= py < y + h


def intersects(a: Sequence[int], b: Sequence[int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def pick_screen(name: str, rect: Sequence[int] | None, screens: Iterable[tuple[str, Rect]]) -> int | None:
    """Index of the screen called ``name``, else the one holding ``rect``'s centre, else None."""
    screens = list(screens)
    for i, (screen_name, _geo) in enumerate(screens):
        if name and screen_name == name:
            return i
    if rect:
        c = centre(rect)
        for i, (_name, geo) in enumerate(screens):
            if contains_point(geo, c):
                return i
    return None


def place_clear_of(size: Sequence[int], obstacle: Sequence[int] | None, area: Sequence[int],
                   preferred: Sequence[int] | None = None, min_height: int | None = None) -> Rect:
    """Where a dialog of ``size`` goes inside ``area`` without overlapping ``obstacle`` (the overlay).

    ``preferred`` (where the user last left it, or the centre) wins if it is clear. Otherwise the
    dialog goes above or below the overlay, whichever has more room, then left or right of it;
    a window that may shrink to ``min_height`` fills the larger free band above or below; if
    nothing is clear (a huge overlay), the spot that leaves the dialog's bottom edge, where OK
    and Cancel live, uncovered for the longest stretch.
    """
    w, h = size
    ax, ay, aw, ah = area
    w, h = min(w, aw), min(h, ah)
    if preferred is None:
        preferred = (ax + (aw - w) // 2, ay + (ah - h) // 2, w, h)
    start = clamp_rect((preferred[0], preferred[1], w, h), area, (1, 1))
    if obstacle is None or not intersects(start, obstacle):
        return start
    ox, oy, ow, oh = obstacle
    gap = DIALOG_GAP
    room_above = oy - gap - ay
    room_below = ay + ah - (oy + oh + gap)
    room_left = ox - gap - ax
    room_right = ax + aw - (ox + ow + gap)
    candidates: list[Rect] = []
    if room_above >= h:
        candidates.append(clamp_rect((start[0], oy - gap - h, w, h), area, (1, 1)))
    if room_below >= h:
        candidates.append(clamp_rect((start[0], oy + oh + gap, w, h), area, (1, 1)))
    if room_left >= w:
        candidates.append(clamp_rect((ox - gap - w, start[1], w, h), area, (1, 1)))
    if room_right >= w:
        candidates.append(clamp_rect((ox + ow + gap, start[1], w, h), area, (1, 1)))
    clear = [c for c in candidates if not intersects(c, obstacle)]
    if clear:
        # The one that moves the least from where the dialog wanted to be.
        return min(clear, key=lambda c: abs(c[0] - start[0]) + abs(c[1] - start[1]))
    # A window that can be shorter (History): as tall as the larger free band allows.
    room = max(room_above, room_below)
    if min_height is not None and min_height <= room < h:
        y = oy - gap - room if room_above >= room_below else oy + oh + gap
        return clamp_rect((start[0], y, w, room), area, (1, 1))
    # No clear spot: keep the buttons uncovered. Above the overlay (bottom edge just over it)
    # if there is any room there, else below it, pushed to the bottom of the area.
    if room_above >= room_below:
        y = max(ay, oy - gap - h)
    else:
        y = ay + ah - h
    return clamp_rect((start[0], y, w, h), area, (1, 1))
