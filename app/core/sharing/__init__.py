"""Captions where people are: a caption page (OBS, phones in the room), a live feed, and
Zoom / YouTube Live / webhook targets. Qt-free; the run feeds ``CaptionShare.on_event``."""

from app.core.sharing.config import DEFAULT_PORT, ShareConfig, ShareConfigError, parse_serve
from app.core.sharing.share import CaptionShare, ShareStartError

__all__ = ["CaptionShare", "DEFAULT_PORT", "ShareConfig", "ShareConfigError", "ShareStartError",
           "parse_serve"]
