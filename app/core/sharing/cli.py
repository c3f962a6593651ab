"""Sharing for a command-line run: the ``--serve``/``--zoom-url``/… flags → a started share."""

from __future__ import annotations

from typing import Callable

from app.core.sharing.config import share_config_from
from app.core.sharing.share import CaptionShare

FLAGS = ("serve", "zoom_url", "youtube_url", "webhook_url")


def share_from_args(args, values: dict, notice: Callable[[str], None],
                    terminal: bool = False) -> CaptionShare | None:
    """None when no sharing flag was given. Raises ``ShareConfigError`` / ``ShareStartError``
    (plain words: the caller exits with a usage error). ``notice`` gets the share link, the
    targets' status changes and, on a ``terminal``, a QR code of a LAN link."""
    given = {name: getattr(args, name, None) for name in FLAGS}
    if not any(given.values()):
        return None
    config = share_config_from(values, caption_lang=getattr(args, "caption_lang", None), **given)
    share = CaptionShare(config, on_status=lambda name, text: notice(text)).start()
    if share.url:
        notice(f"sharing captions at {share.url}")
        if terminal and "token=" in share.url:      # phones in the room scan it
            from app.core.sharing.qr import qr_text
            notice("scan to open the captions on a phone:\n" + qr_text(share.url))
    return share
