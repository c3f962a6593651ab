"""Live caption overlay: AssemblyAI streaming (or an offline engine) shown in an always-on-top window.

Name, version and identity live here and nowhere else; pyproject.toml, build.spec and the
installers read them from this file.
"""

APP_NAME = "Caption Overlay"
APP_ID = "caption-overlay"  # executable, data-dir and keyring service name
ORG_NAME = "CaptionOverlay"
ORG_DOMAIN = "captionoverlay.app"
BUNDLE_ID = "app.captionoverlay.CaptionOverlay"
REPOSITORY = "CaptionOverlay/caption-overlay"  # GitHub owner/name: releases, installers, update feed
__version__ = "0.1.0"
