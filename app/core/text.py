"""Text from a server, made safe to show on a terminal or in one line of output."""

from __future__ import annotations

import re

# C0 controls (tab included: it would break column layouts), DEL and C1 controls. C1 matters
# too: U+009B is a one-character CSI that many terminals honour like ESC [.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def strip_controls(text: str) -> str:
    """Replace every run of control characters (escapes, CR/LF, tabs) with one space.

    A caption printed on a terminal can then neither move the cursor, recolour or retitle the
    terminal, nor split one final into two lines.
    """
    return _CONTROLS.sub(" ", text)


def one_line(text: str, limit: int = 200) -> str:
    """Controls removed, whitespace collapsed, cut to ``limit`` characters (for messages)."""
    flat = " ".join(strip_controls(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
