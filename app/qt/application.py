"""``caption-overlay`` with no flags: the overlay, the tray icon and global hotkeys, captions started.

The composition of the GUI: QApplication (identity from ``app/__init__.py``), settings (QSettings
INI), the controller, the overlay, the tray and the hotkeys, wired here and nowhere else.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

from PySide6.QtCore import QSocketNotifier, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_ID, APP_NAME, BUNDLE_ID, ORG_DOMAIN, ORG_NAME, __version__
from app.core.settings import Settings
from app.core.status import STARTING
from app.logging_setup import setup_gui_logging

log = logging.getLogger(__name__)

FIRST_FRAME_WAIT_MS = 500   # start captions after the overlay's first frame, or after this at most


class GuiApp:
    """Everything the running GUI holds; built by ``build()``, kept alive by ``run_gui``."""

    def __init__(self, settings: Settings, args=None, *, controller=None) -> None:
        from app.qt import platform as plat
        from app.core.run_plan import overrides_from_args
        from app.qt.controller import Controller
        from app.qt.hotkeys import GlobalHotkeys
        from app.qt.overlay import CaptionOverlay
        from app.qt.tray import Tray, app_icon

        self.settings = settings
        self.info = plat.detect()
        QApplication.setWindowIcon(app_icon())
        self.controller = controller or Controller(
            settings, overrides=overrides_from_args(args),
            transcript_dir=getattr(args, "transcript_dir", None))
        from app.qt.sharing import ShareBridge
        self.sharing = ShareBridge(settings, self.controller, args)
        self.overlay = CaptionOverlay(settings)
        self.tray = Tray(self.controller, self.overlay, offer_xwayland=self.info.can_offer_xwayland)
        self.hotkeys = GlobalHotkeys()
        self._settings_dialog = None
        self._history = None
        self._damaged_note = False        # the status line points at Settings for a damaged file
        self.services_started = False
        self._quitting = False

        c, o = self.controller, self.overlay
        c.partial.connect(o.on_partial)
        c.final.connect(o.on_final)
        c.revision.connect(o.on_revision)
        c.translation.connect(o.on_translation)
        c.translation_mode.connect(o.set_translation_mode)
        o.set_speaker_names(c.names)
        o.speaker_renamed.connect(c.speaker_renamed)
        c.speakers_renamed.connect(o.on_speakers_renamed)
        c.status_changed.connect(o.set_status)
        c.levels_changed.connect(o.set_levels)
        c.sources_changed.connect(o.set_source_labels)
        c.style_preview.connect(o.preview_style)
        c.settings_applied.connect(self._on_settings_applied)
        c.error.connect(self._on_error)
        self.sharing.problem.connect(self._on_error)
        self.tray.settings_requested.connect(self.open_settings)
        self.tray.history_requested.connect(self.open_history)
        self.tray.quit_requested.connect(self.quit)
        self.tray.xwayland_requested.connect(self.restart_under_xwayland)
        self.hotkeys.activated.connect(self._on_hotkey)
        o.set_status(c.status)
        if self.info.notes:
            o.set_status_note("Wayland: may be covered by other windows" if self.info.qpa == "wayland"
                              else "no compositor: background opaque", "\n\n".join(self.info.notes))
        self._register_hotkeys()

    # ---- start/stop ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.tray.available:
            self.tray.show()
        if not self.tray.available and self.overlay.click_through and not self.hotkeys.active:
            # Nothing could undo click-through (no tray, no hotkey): never trap the user.
            self.overlay.set_click_through(False)
        if self.settings.get("overlay/visible") or not self.tray.available:
            self.overlay.set_overlay_visible(True, persist=False)
        for note in self.info.notes:
            self.tray.notify(APP_NAME, note)
        # A damaged settings file was set aside: say so once, where the user will see it.
        for problem in getattr(self.settings.store, "warnings", ()):
            if self.tray.available:
                self.tray.notify("Settings were reset", problem)
            elif not self.info.notes:
                self.overlay.set_status_note("settings file damaged: see Settings", problem)
                self._damaged_note = True
        # Everything else (key, audio devices, the offline model, the update question, sharing)
        # waits for the overlay's first frame: the window is up at once, and its status line
        # says what is starting. A hidden overlay or a frame that never comes waits no longer.
        if self.settings.get("app/start_on_launch") and not self.controller.running:
            self.overlay.set_status(STARTING)      # not "Captions stopped" on the first frame
        if self.overlay.isVisible():
            self.overlay.first_frame.connect(self._start_services, Qt.ConnectionType.QueuedConnection)
            QTimer.singleShot(FIRST_FRAME_WAIT_MS, self._start_services)
        else:
            QTimer.singleShot(0, self._start_services)

    def _start_services(self) -> None:
        if self.services_started or self._quitting:
            return
        self.services_started = True
        if self.settings.get("app/start_on_launch"):
            self.controller.start()
        from app.qt.updates import UpdateNotifier
        self.updates = UpdateNotifier(self.settings, self.tray.notify)
        self.updates.start()
        self.sharing.start()

    def activate(self, overrides: dict | None = None) -> None:
        """A second launch: bring the overlay forward and apply what its command line asked for."""
        self.overlay.set_overlay_visible(True)
        self.overlay.raise_()
        if overrides:
            self.controller.use_overrides(overrides)

    def quit(self) -> None:
        self._quitting = True
        self.controller.shutdown()
        self.sharing.shutdown()
        self.overlay.flush_geometry()
        self.hotkeys.close()
        self.tray.hide()
        QApplication.quit()

    def restart_under_xwayland(self) -> None:
        """Stop cleanly (finals saved, geometry kept), then replace this process under XWayland."""
        from app.qt import platform as plat
        self._quitting = True
        self.controller.shutdown()
        self.sharing.shutdown()
        self.overlay.flush_geometry()
        self.hotkeys.close()
        self.tray.hide()
        plat.restart_under_xwayland()

    # ---- windows opened on demand (imported lazily: most sittings never open them) --------------
    def open_settings(self) -> None:
        if self._damaged_note:                        # Settings says it in full from now on
            self._damaged_note = False
            self.overlay.set_status_note("")
        if self._settings_dialog is None:
            from app.qt.dialog_placement import ClearOfOverlay
            from app.qt.settings_dialog import SettingsDialog
            self._settings_dialog = SettingsDialog(self.settings, self.controller)
            self._settings_dialog.finished.connect(self._settings_closed)
            self._settings_dialog.placement = ClearOfOverlay(self._settings_dialog, self.overlay,
                                                             self.settings.store, "windows/settings")
            self._settings_dialog.placement.place()
        self._settings_dialog.show()
        self._settings_dialog.raise_()
        self._settings_dialog.activateWindow()

    def _settings_closed(self, *_args) -> None:
        self._settings_dialog = None

    def open_history(self) -> None:
        if self._history is None:
            from app.qt.dialog_placement import ClearOfOverlay
            from app.qt.history_window import HistoryWindow
            self._history = HistoryWindow(self.controller, self.controller.transcript_dir)
            self._history.placement = ClearOfOverlay(self._history, self.overlay, self.settings.store,
                                                     "windows/history", may_shrink=True)
            self._history.placement.place()
        elif not self._history.isVisible():
            self._history.placement.place()
        self._history.show()
        self._history.raise_()
        self._history.activateWindow()

    # ---- reactions -----------------------------------------------------------------------------
    def _on_settings_applied(self, keys) -> None:
        self.overlay.apply_settings(keys)
        if any(k.startswith("hotkeys/") for k in keys):
            self._register_hotkeys()
        if "updates/check" in keys and getattr(self, "updates", None) is not None:
            self.updates.check_if_due()

    def _register_hotkeys(self) -> None:
        failures = self.hotkeys.register_from_settings(self.settings)
        self.tray.set_hotkey_hints({name: str(hk) for name, hk in self.hotkeys.active.items()})
        if failures and self.hotkeys.supported:
            self.tray.notify("Some hotkeys are not available", "\n".join(failures.values()))

    def _on_hotkey(self, name: str) -> None:
        if name == "toggle_visible":
            self.overlay.toggle_visible()
        elif name == "toggle_click_through":
            self.overlay.toggle_click_through()
            if not self.overlay.isVisible():
                self.overlay.set_overlay_visible(True)
        elif name == "force_end":
            self.controller.force_end()

    def _on_error(self, message: str) -> None:
        log.warning("%s", message)
        self.tray.notify(APP_NAME, message)


def _make_settings(args) -> Settings:
    from app.qt.settings_store import QSettingsStore
    return Settings(QSettingsStore())


def _report(message: str) -> None:
    log.info("%s", message)
    if sys.stderr is not None:   # None in a windowed build
        print(message, file=sys.stderr)


def start_gui(args) -> "GuiApp | int":
    """Everything ``run_gui`` does before the event loop: the running GuiApp, or an exit code
    (another copy took over, or the settings could not be read)."""
    setup_gui_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_ID)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setOrganizationDomain(ORG_DOMAIN)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(BUNDLE_ID)   # matches packaging/linux/<BUNDLE_ID>.desktop (Wayland app id)
    app.setQuitOnLastWindowClosed(False)   # closing history/settings must not end the captions

    from app.core.run_plan import OVERRIDE_KEYS, SOURCE_OVERRIDE, overrides_from_args
    from app.qt.single_instance import become_single
    overrides = overrides_from_args(args) if args is not None else {}
    instance = become_single(overrides, set(OVERRIDE_KEYS.values()) | {SOURCE_OVERRIDE},
                             report=_report)
    if instance is None:
        return 0                            # the copy already running took over
    try:
        settings = _make_settings(args)
    except Exception as exc:  # noqa: BLE001 - an unreadable config must still show why
        instance.close()
        QMessageBox.critical(None, APP_NAME, f"The settings could not be loaded: {exc}")
        return 1
    gui = GuiApp(settings, args)
    gui.instance = instance
    instance.activated.connect(gui.activate)
    app.aboutToQuit.connect(gui.controller.shutdown)
    app.aboutToQuit.connect(instance.close)
    # Ctrl+C in a terminal quits cleanly (finals saved): Python needs the interpreter to run now
    # and then to see the signal while Qt's loop is waiting.
    # Queued, so a signal that arrives while still starting up is acted on once the loop runs
    # (QApplication.quit() before exec() would be lost).
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, gui.quit))
    signal.signal(signal.SIGTERM, lambda *_: QTimer.singleShot(0, gui.quit))
    gui.signal_wakeup = _SignalWakeup()
    gui.start()
    return gui


class _SignalWakeup:
    """Python runs a signal handler only when the interpreter next runs, and Qt's loop waits in
    C: the signal's byte on a socket pair wakes the loop at once (no timer ticking all day)."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        for sock in (self._read, self._write):
            sock.setblocking(False)
        try:
            self._previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        except ValueError:             # not the main thread: signals go elsewhere anyway
            self._previous = None
        self.notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read)
        self.notifier.activated.connect(self._drain)

    def _drain(self, *_args) -> None:
        try:
            while self._read.recv(512):
                pass
        except OSError:               # empty (would block)
            pass


def run_gui(args) -> int:
    started = start_gui(args)
    if isinstance(started, int):
        return started
    return QApplication.instance().exec()
