"""What a sharing run does: where the caption page listens and which targets receive finals.

Everything here is checked before anything starts, so a typo in ``--serve`` or a pasted URL
is a plain-words error up front instead of a failure in a background thread.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PORT = 8765
_LANG = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


class ShareConfigError(ValueError):
    """A sharing setting that cannot work; the message says why in plain words."""


@dataclass(frozen=True)
class ShareConfig:
    serve: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT          # 0 = any free port (tests)
    zoom_url: str | None = None
    youtube_url: str | None = None
    webhook_url: str | None = None
    caption_lang: str = "en-US"       # Zoom's lang parameter
    style: dict = field(default_factory=dict)   # overlay appearance for the page (no secrets)
    max_clients: int = 50             # concurrent /events + /ws streams
    history: int = 500                # finals kept for late joiners and resumes
    client_queue: int = 256           # events a slow client may lag before it is dropped
    request_timeout_s: float = 10.0   # per POST to a caption target
    backoff_s: tuple[float, float] = (0.5, 30.0)   # first and longest retry delay

    @property
    def any_target(self) -> bool:
        return bool(self.zoom_url or self.youtube_url or self.webhook_url)

    @property
    def enabled(self) -> bool:
        return self.serve or self.any_target

    @property
    def needs_token(self) -> bool:
        """Anything reachable beyond this computer requires the access token on every path."""
        return not is_loopback(self.host)

    def validate(self) -> "ShareConfig":
        if self.serve:
            if not 0 <= self.port <= 65535:
                raise ShareConfigError(f"Port {self.port} is not a port number (1-65535).")
            check_host(self.host)
        for name, url in (("Zoom caption URL", self.zoom_url), ("YouTube caption URL", self.youtube_url),
                          ("Webhook URL", self.webhook_url)):
            if url is not None:
                check_target_url(name, url)
        if self.zoom_url and not _LANG.match(self.caption_lang or ""):
            raise ShareConfigError(f"Caption language {self.caption_lang!r} should look like en-US "
                                   "(language, dash, country).")
        return self


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> None:
    """Only IP addresses (or localhost): a name could resolve somewhere unexpected."""
    if is_loopback(host):
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ShareConfigError(f"{host!r} is not an IP address to listen on (for example 127.0.0.1, "
                               "0.0.0.0 or this computer's LAN address).") from None


def parse_serve(spec: str) -> tuple[str, int]:
    """``--serve [HOST:]PORT`` → (host, port). IPv6 hosts go in brackets: ``[::]:8765``."""
    text = (spec or "").strip()
    if not text:
        raise ShareConfigError("--serve needs a port, for example --serve 8765 or --serve 0.0.0.0:8765.")
    host = "127.0.0.1"
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ShareConfigError(f"Could not read {spec!r}; write an IPv6 address as [ADDRESS]:PORT.")
        host, port_text = text[1:end], text[end + 2:]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
        if ":" in host:
            raise ShareConfigError(f"Could not read {spec!r}; write an IPv6 address as [ADDRESS]:PORT.")
    else:
        port_text = text
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ShareConfigError(f"{port_text!r} is not a port number (1-65535).")
    host = host or "127.0.0.1"
    check_host(host)
    return host, int(port_text)


def check_target_url(name: str, url: str) -> None:
    """https only; plain http is accepted for this computer (local relays and test stand-ins)."""
    if any(c.isspace() for c in url.strip()):
        raise ShareConfigError(f"The {name} contains spaces; paste it again as one line.")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ShareConfigError(f"The {name} is not a valid web address.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ShareConfigError(f"The {name} should start with https://.")
    if parts.username or parts.password:
        raise ShareConfigError(f"The {name} must not contain a user name or password.")
    if parts.scheme == "http" and not is_loopback(host):
        raise ShareConfigError(f"The {name} must use https:// (captions would cross the network "
                               "unencrypted).")


def obs_url(url: str) -> str:
    """The share link as an OBS Browser Source wants it: see-through page, captions only."""
    return url + ("&" if "?" in url else "?") + "transparent=1"


def redact_url(url: str) -> str:
    """Scheme, host and path only: caption URLs carry signatures that act as passwords."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{parts.path}"
    except ValueError:
        return "(the configured URL)"


def read_url_arg(name: str, value: str | None) -> str | None:
    """A target URL from the command line; ``@FILE`` reads it from a file, so its signature
    stays out of the process list."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("@"):
        from pathlib import Path
        path = Path(value[1:]).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ShareConfigError(f"Cannot read the {name} from {path}: "
                                   f"{getattr(exc, 'strerror', None) or exc}.") from None
    return value or None


def config_style(values: dict) -> dict:
    """The overlay's appearance as the page uses it (only looks; never anything else)."""
    from app.core.settings import PREF_BY_KEY

    def get(key):
        return values.get(key, PREF_BY_KEY[key].default)

    return {
        "font_family": get("appearance/font_family"),
        "font_size": int(get("appearance/font_size")),
        "text_color": get("appearance/text_color"),
        "background_color": get("appearance/background_color"),
        "background_opacity": int(get("appearance/background_opacity")),
        "text_effect": get("appearance/text_effect"),
        "lines": int(get("captions/lines")),
        "clear_after_s": int(get("captions/clear_after_s")),
        "show_source_labels": bool(get("captions/show_source_labels")),
        "stable_only": bool(get("captions/stable_only")),
    }


def share_config_from(values: dict, *, serve: str | None = None, zoom_url: str | None = None,
                      youtube_url: str | None = None, webhook_url: str | None = None,
                      caption_lang: str | None = None, use_saved_targets: bool = False,
                      **extra) -> ShareConfig:
    """Preferences (a ``Settings.snapshot()``) + command-line overrides → a checked config.

    The headless CLI shares only what its flags ask for (``use_saved_targets=False``); the app
    also uses what Settings → Sharing saved.
    """
    from app.core.settings import PREF_BY_KEY

    def get(key):
        return values.get(key, PREF_BY_KEY[key].default) if key in PREF_BY_KEY else None

    if serve is not None:
        host, port = parse_serve(serve)
        serving = True
    else:
        serving = bool(use_saved_targets and get("sharing/serve"))
        host = "0.0.0.0" if get("sharing/lan") else "127.0.0.1"
        port = int(get("sharing/port") or DEFAULT_PORT)

    def saved(key):
        return (get(key) or "").strip() or None if use_saved_targets else None

    return ShareConfig(
        serve=serving, host=host, port=port,
        zoom_url=read_url_arg("Zoom caption URL", zoom_url) or saved("sharing/zoom_url"),
        youtube_url=read_url_arg("YouTube caption URL", youtube_url) or saved("sharing/youtube_url"),
        webhook_url=read_url_arg("Webhook URL", webhook_url) or saved("sharing/webhook_url"),
        caption_lang=caption_lang or get("sharing/caption_lang") or "en-US",
        style=config_style(values), **extra).validate()


def lan_address() -> str | None:
    """This computer's address on the local network (what a phone in the room can reach).

    A UDP "connect" only picks the outgoing interface; no packet is sent.
    """
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 1))
            address = s.getsockname()[0]
    except OSError:
        try:
            address = socket.gethostbyname(socket.gethostname())
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address
