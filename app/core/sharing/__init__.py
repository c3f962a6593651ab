"""Captions where people are: a caption page (OBS, phones in the room), a live feed, and
Zoom / YouTube Live / webhook targets. Qt-free; the run feeds ``CaptionShare.on_event``."""

from app.core.sharing.config import DEFAULT_PORT, ShareConfig, ShareConfigError, parse_serve


def __getattr__(name: str):
    # The share itself (asyncio, then aiohttp) loads only when something shares: most sittings
    # never do, and the overlay's first frame should not wait for it.
    if name in ("CaptionShare", "ShareStartError"):
        from app.core.sharing import share
        return getattr(share, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["CaptionShare", "DEFAULT_PORT", "ShareConfig", "ShareConfigError", "ShareStartError",
           "parse_serve"]
