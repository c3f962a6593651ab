"""Sharing page: the caption page (OBS, phones in the room) and caption targets (Zoom, ...).

Shows the running share link with a QR code; checks every address before OK / Apply.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QVBoxLayout)

from app.core.settings import PAGE_KEYS, PREF_BY_KEY
from app.core.sharing.config import ShareConfigError, share_config_from
from app.qt.settings_pages.base import SettingsPage, explanation

QR_SCALE = 5


class SharingPage(SettingsPage):
    title = "Sharing"
    keys = PAGE_KEYS["sharing"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.serve = QCheckBox("Serve a caption page while captioning (for OBS and browsers)")
        self.lan = QCheckBox("Let phones and computers on this network open it")
        self.lan.setToolTip("Anyone on the network who has the link (it carries an access token) "
                            "can read the captions.")
        pref = PREF_BY_KEY["sharing/port"]
        self.port = QSpinBox()
        self.port.setRange(pref.minimum, pref.maximum)
        self.zoom_url = QLineEdit()
        self.zoom_url.setPlaceholderText("https://wmcapi.zoom.us/closedcaption?id=…")
        self.caption_lang = QLineEdit()
        self.caption_lang.setMaxLength(6)
        self.caption_lang.setPlaceholderText("en-US")
        self.caption_lang.setToolTip(
            "Zoom's language for captions whose language was not detected. With \u201cDetect the "
            "language of each caption\u201d on, each caption is sent with its own language "
            "(es \u2192 es-ES); this setting's country is kept for its own language (en-GB).")
        self.youtube_url = QLineEdit()
        self.youtube_url.setPlaceholderText("http(s) caption ingestion URL from YouTube Studio")
        self.webhook_url = QLineEdit()
        self.webhook_url.setPlaceholderText("https://example.org/captions")
        for edit in (self.zoom_url, self.youtube_url):   # signed URLs act as passwords
            edit.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)

        self.link = QLabel()
        self.link.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.link.setWordWrap(True)
        self.link.setAccessibleName("Share link")
        self.qr = QLabel()
        self.qr.setAccessibleName("QR code of the share link")
        self.copy_button = QPushButton("Copy link")
        self.copy_obs_button = QPushButton("Copy OBS link")
        self.copy_obs_button.setToolTip("The link with a transparent background, for an OBS "
                                        "Browser Source")
        self.open_button = QPushButton("Open in browser")
        self.renew_button = QPushButton("New link")
        self.renew_button.setToolTip("Makes a new access token; people with the old link are "
                                     "disconnected.")
        self.viewers = QLabel()
        self.target_status = QLabel()
        self.target_status.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #c62828;")
        self.problem_label.setWordWrap(True)

        page_box = QGroupBox("Caption page")
        form = QFormLayout(page_box)
        form.addRow("", self.serve)
        form.addRow("", self.lan)
        form.addRow("Port", self.port)
        buttons = QHBoxLayout()
        for b in (self.copy_button, self.copy_obs_button, self.open_button, self.renew_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        link_column = QVBoxLayout()
        link_column.addWidget(self.link)
        link_column.addLayout(buttons)
        link_column.addWidget(self.viewers)
        link_column.addStretch(1)
        link_row = QHBoxLayout()
        link_row.addLayout(link_column, 1)
        link_row.addWidget(self.qr)
        form.addRow(link_row)
        form.addRow(explanation(
            "OBS: add a Browser Source with the OBS link (the link with transparent=1) for "
            "captions over your scene."))

        targets_box = QGroupBox("Send captions to")
        tform = QFormLayout(targets_box)
        tform.addRow("Zoom caption URL", self.zoom_url)
        tform.addRow("Caption language", self.caption_lang)
        tform.addRow("YouTube Live URL", self.youtube_url)
        tform.addRow("Webhook URL", self.webhook_url)
        tform.addRow(explanation(
            "Zoom: in the meeting choose Captions → Set up manual captioner → Copy the API token, "
            "and paste it here. Finals are sent in order; failed sends are retried."))
        tform.addRow(self.target_status)

        layout = QVBoxLayout(self)
        layout.addWidget(page_box)
        layout.addWidget(targets_box)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)

        for edit in (self.zoom_url, self.caption_lang, self.youtube_url, self.webhook_url):
            edit.textChanged.connect(self.refresh_validity)
        self.serve.toggled.connect(self._enable)
        self.port.valueChanged.connect(self.refresh_validity)
        self.copy_button.clicked.connect(self._copy)
        self.copy_obs_button.clicked.connect(self._copy_obs)
        self.open_button.clicked.connect(self._open)
        self.renew_button.clicked.connect(self._renew)
        bridge = self.bridge
        if bridge is not None:
            bridge.changed.connect(self.show_link)
            bridge.status.connect(self._show_status)
        self.show_link()

    @property
    def bridge(self):
        return getattr(self.controller, "sharing", None)

    # --- contract ---------------------------------------------------------------------------

    def values(self) -> dict:
        return {"sharing/serve": self.serve.isChecked(), "sharing/lan": self.lan.isChecked(),
                "sharing/port": self.port.value(),
                "sharing/zoom_url": self.zoom_url.text().strip(),
                "sharing/youtube_url": self.youtube_url.text().strip(),
                "sharing/webhook_url": self.webhook_url.text().strip(),
                "sharing/caption_lang": self.caption_lang.text().strip() or "en-US"}

    def set_values(self, values: dict) -> None:
        self.serve.setChecked(values["sharing/serve"])
        self.lan.setChecked(values["sharing/lan"])
        self.port.setValue(values["sharing/port"])
        self.zoom_url.setText(values["sharing/zoom_url"])
        self.caption_lang.setText(values["sharing/caption_lang"])
        self.youtube_url.setText(values["sharing/youtube_url"])
        self.webhook_url.setText(values["sharing/webhook_url"])
        self._enable()
        self.refresh_validity()

    def problem(self) -> str:
        try:
            share_config_from(self.values(), use_saved_targets=True)
        except ShareConfigError as exc:
            return str(exc)
        return ""

    def refresh_validity(self, *_args) -> None:
        self.problem_label.setText(self.problem())
        super().refresh_validity()

    # --- the running link -------------------------------------------------------------------

    def show_link(self) -> None:
        bridge = self.bridge
        runner = bridge.runner if bridge is not None else None
        url = runner.url if runner is not None else None
        for b in (self.copy_button, self.copy_obs_button, self.open_button):
            b.setEnabled(bool(url))
        self.renew_button.setEnabled(bool(url and "token=" in url))
        if url:
            self.link.setText(url)
            self.qr.setPixmap(self._qr_pixmap(url))
            self.qr.setVisible(True)
            count = runner.viewers
            self.viewers.setText(f"{count} viewer{'s' if count != 1 else ''} connected"
                                 if count else "")
        else:
            why = runner.error if runner is not None and runner.error else ""
            self.link.setText(why or "The link appears here once sharing is on (OK or Apply).")
            self.qr.clear()
            self.qr.setVisible(False)
            self.viewers.setText("")
        if runner is not None:
            self.target_status.setText("\n".join(runner.statuses().values()))

    def _qr_pixmap(self, url: str) -> QPixmap:
        from app.core.sharing.qr import qr_png
        pixmap = QPixmap()
        pixmap.loadFromData(qr_png(url, scale=QR_SCALE), "PNG")
        return pixmap

    def _show_status(self, _name: str, _text: str) -> None:
        self.show_link()

    def _enable(self, *_args) -> None:
        self.lan.setEnabled(self.serve.isChecked())
        self.port.setEnabled(self.serve.isChecked())

    def _copy(self) -> None:
        url = self.link.text()
        if url.startswith("http"):
            QGuiApplication.clipboard().setText(url)

    def _copy_obs(self) -> None:
        from app.core.sharing.config import obs_url
        url = self.link.text()
        if url.startswith("http"):
            QGuiApplication.clipboard().setText(obs_url(url))

    def _open(self) -> None:
        url = self.link.text()
        if url.startswith("http"):
            QDesktopServices.openUrl(QUrl(url))

    def _renew(self) -> None:
        bridge = self.bridge
        if bridge is not None:
            bridge.runner.regenerate_token()
