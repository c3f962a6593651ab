"""QR codes of the share link, so people in the room open it without typing."""

from __future__ import annotations

import io


def qr_png(url: str, scale: int = 6) -> bytes:
    import segno
    buffer = io.BytesIO()
    # Medium error correction survives a phone camera at an angle; border 4 is the spec's quiet zone.
    segno.make(url, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_text(url: str) -> str:
    """The code drawn with block characters, for a terminal (headless runs on the LAN)."""
    import segno
    qr = segno.make(url, error="m")
    rows = [[bool(v) for v in row] for row in qr.matrix_iter(scale=1, border=2)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2]):   # two modules per character cell
        lines.append("".join({(True, True): "█", (True, False): "▀", (False, True): "▄",
                              (False, False): " "}[(a, b)] for a, b in zip(top, bottom)))
    return "\n".join(lines)
