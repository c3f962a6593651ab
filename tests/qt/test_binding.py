"""Guards against Qt-binding defects that only show after hours of captions."""

import sys

from PySide6.QtGui import QColor, QFont, QImage, QPainter


def test_qt_calls_returning_none_do_not_leak_references_to_none(qapp):
    # PySide6 6.12.0 on Python 3.11 dropped one reference to None per such call; the overlay's
    # ~20 calls per repaint drove None's count to zero within minutes and CPython aborted
    # ("Fatal Python error: none_dealloc"). On 3.12+ None is immortal and this reads constant.
    image = QImage(40, 40, QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    font, color = QFont(), QColor("red")
    before = sys.getrefcount(None)
    for _ in range(1000):
        painter.setFont(font)
        color.setAlpha(3)
    after = sys.getrefcount(None)
    painter.end()
    assert before - after < 50, f"{before - after} references to None lost in 2000 Qt calls"
