"""Info.plist entries of Caption Overlay.app (build.spec passes them to BUNDLE(info_plist=...))."""

from __future__ import annotations


def info_plist(ident: dict, minimum_system: str) -> dict:
    """``minimum_system`` comes from the bundle's binaries (``macho.bundle_minimum``)."""
    return {
        "CFBundleName": ident["APP_NAME"],
        "CFBundleDisplayName": ident["APP_NAME"],
        "CFBundleIdentifier": ident["BUNDLE_ID"],
        "CFBundleShortVersionString": ident["__version__"],
        "CFBundleVersion": ident["__version__"],
        "LSMinimumSystemVersion": minimum_system,
        # A menu-bar app: no Dock icon and no app menu (the status-item menu has every action).
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
        "LSApplicationCategoryType": "public.app-category.productivity",
        # Without this string macOS denies the microphone, silently: PortAudio then reads zeros.
        "NSMicrophoneUsageDescription":
            f"{ident['APP_NAME']} listens to the microphone to show live captions of what is said.",
        # macOS 14.2+ asks with this text before the sound other apps play can be captured.
        "NSAudioCaptureUsageDescription":
            f"{ident['APP_NAME']} captures the sound other apps play to caption meetings and videos.",
    }
