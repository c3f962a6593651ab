"""Settings dialog pages. Each follows one contract (``SettingsPage``): load / save /
restore_defaults, plus revert for live previews that Cancel must undo."""

from app.qt.settings_pages.base import SettingsPage

__all__ = ["SettingsPage"]
