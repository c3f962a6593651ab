"""The tray icon and its menu: the way back when the overlay is click-through.

The same ``QMenu`` is also the overlay's right-click menu (while unlocked), so desktops without a
system tray (e.g. GNOME without the AppIndicator extension) still reach every action.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app import APP_NAME
from app.core.status import State, Status

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def app_icon() -> QIcon:
    """The app icon at every size the packaging step rendered from resources/caption-overlay.svg."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        png = RESOURCES / f"caption-overlay-{size}.png"
        if png.exists():
            icon.addFile(str(png))
    return icon


def tray_icon(state: State) -> QIcon:
    """The tray icon for a state: the app icon, or its "stopped"/"error" variant."""
    # PNG, not SVG: frozen builds may leave out Qt's SVG icon-engine plugin.
    name = {State.ERROR: "tray-error", State.STOPPED: "tray-stopped"}.get(state)
    if name and (RESOURCES / "icons" / f"{name}.png").exists():
        return QIcon(str(RESOURCES / "icons" / f"{name}.png"))
    return app_icon()


class Tray(QObject):
    """Builds the menu, keeps its check marks in step with the app, forwards choices."""

    settings_requested = Signal()
    history_requested = Signal()
    quit_requested = Signal()
    xwayland_requested = Signal()

    def __init__(self, controller, overlay, *, offer_xwayland: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.overlay = overlay
        self.menu = QMenu()
        self.menu.setAccessibleName(f"{APP_NAME} menu")

        self.start_action = self._action("Start captions", "Start or stop live captioning",
                                         self._toggle_running)
        self.lock_action = self._action("Click-through (locked)",
                                        "When on, clicks pass through the overlay to the windows "
                                        "below; turn off to move or resize it",
                                        lambda on: overlay.set_click_through(on), checkable=True)
        self.show_action = self._action("Show overlay", "Show or hide the caption overlay",
                                        lambda on: overlay.set_overlay_visible(on), checkable=True)
        self.force_end_action = self._action("End the current line now", "Finish the current sentence "
                                             "immediately instead of waiting for a pause",
                                             controller.force_end)
        self.menu.addSeparator()
        dock_menu = self.menu.addMenu("Position")
        dock_menu.setAccessibleName("Overlay position")
        self.dock_group = QActionGroup(self)
        self.dock_actions: dict[str, QAction] = {}
        for dock, label in (("bottom", "Bottom centre"), ("top", "Top centre"), ("floating", "Floating")):
            act = QAction(label, self, checkable=True)
            act.setData(dock)
            act.setToolTip(f"Dock the overlay: {label.lower()}")
            act.triggered.connect(lambda _=False, d=dock: overlay.set_dock(d))
            self.dock_group.addAction(act)
            dock_menu.addAction(act)
            self.dock_actions[dock] = act
        self.clear_action = self._action("Clear captions", "Remove the captions now on screen",
                                         overlay.clear_captions)
        self.menu.addSeparator()
        self.history_action = self._action("History…", "Captions of this and earlier sessions",
                                           self.history_requested.emit)
        self.settings_action = self._action("Settings…", "Connection, audio, appearance, hotkeys",
                                            self.settings_requested.emit)
        self.xwayland_action = None
        if offer_xwayland:
            self.xwayland_action = self._action("Restart with XWayland (keeps captions on top)",
                                                "Wayland cannot keep the overlay above other "
                                                "windows; XWayland can", self.xwayland_requested.emit)
        self.menu.addSeparator()
        self.quit_action = self._action("Quit", f"Stop captions and quit {APP_NAME}",
                                        self.quit_requested.emit)

        self.icon = QSystemTrayIcon(app_icon(), self)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip(APP_NAME)
        self.icon.activated.connect(self._on_activated)

        controller.running_changed.connect(self._on_running)
        controller.status_changed.connect(self._on_status)
        overlay.click_through_changed.connect(self._sync)
        overlay.visibility_changed.connect(self._sync)
        overlay.dock_changed.connect(self._sync)
        overlay.set_context_menu(self.menu)
        self._on_running(controller.running)
        self._sync()

    @property
    def available(self) -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def notify(self, title: str, message: str) -> None:
        if self.icon.isVisible() and self.icon.supportsMessages():
            self.icon.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, 10000)

    def set_hotkey_hints(self, hints: dict[str, str]) -> None:
        """Show the global hotkeys next to their menu entries (e.g. {"force_end": "Ctrl+Alt+E"})."""
        for name, action in (("toggle_visible", self.show_action), ("toggle_click_through", self.lock_action),
                             ("force_end", self.force_end_action)):
            text = action.text().split("\t")[0]
            action.setText(f"{text}\t{hints[name]}" if hints.get(name) else text)

    # ---- internals ----------------------------------------------------------------------------
    def _action(self, text: str, tip: str, slot, checkable: bool = False) -> QAction:
        act = QAction(text, self, checkable=checkable)
        act.setToolTip(tip)
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.menu.addAction(act)
        return act

    def _toggle_running(self) -> None:
        if self.controller.running:
            self.controller.stop()
        else:
            self.controller.start()

    def _on_running(self, running: bool) -> None:
        self.start_action.setText("Stop captions" if running else "Start captions")
        self.force_end_action.setEnabled(running)

    def _on_status(self, status: Status) -> None:
        self.icon.setToolTip(f"{APP_NAME} — {status.summary()}")
        self.icon.setIcon(tray_icon(status.state))

    def _sync(self, *_args) -> None:
        self.lock_action.setChecked(self.overlay.click_through)
        self.show_action.setChecked(self.overlay.isVisible())
        dock = self.overlay.settings.get("overlay/dock")
        if dock in self.dock_actions:
            self.dock_actions[dock].setChecked(True)

    def _on_activated(self, reason) -> None:
        # A plain click on the icon toggles the overlay (the menu is on right-click). On macOS
        # a click on the menu-bar item opens the menu and Qt reports that as Trigger too, so
        # toggling there would hide the overlay whenever the menu is opened.
        if reason == QSystemTrayIcon.ActivationReason.Trigger and not click_opens_menu():
            self.overlay.toggle_visible()


def click_opens_menu() -> bool:
    """True where a click on the tray icon opens its menu (the macOS menu bar)."""
    return sys.platform == "darwin"
