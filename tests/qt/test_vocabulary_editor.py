"""The vocabulary editor's live counter, paste splitting and validity (pytest-qt)."""

import pytest
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QTextCursor

from app.qt.vocabulary_editor import VocabularyEditor


@pytest.fixture
def editor(qtbot):
    widget = VocabularyEditor("v2")
    qtbot.addWidget(widget)
    return widget


def v2_text(total_chars: int) -> str:
    terms = [f"t{i:03d}" + "x" * 45 for i in range(50)]       # 50 × 49 = 2450 characters
    terms.append("y" * (total_chars - 2450))
    return "\n".join(terms)


def is_red(label) -> bool:
    return "c62828" in label.styleSheet()


def test_v2_2500_characters_pass(editor):
    editor.edit.setPlainText(v2_text(2500))
    assert editor.counter.text() == "2500 / 2500 characters"
    assert editor.is_valid() and not is_red(editor.counter)
    assert editor.reason.isHidden()


def test_v2_2501_characters_fail_red_with_reason(editor, qtbot):
    editor.edit.setPlainText(v2_text(2500))
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as blocker:
        editor.edit.insertPlainText("z")                        # one more character
    assert blocker.args == [False]
    assert editor.counter.text() == "2501 / 2500 characters"
    assert is_red(editor.counter) and not editor.is_valid()
    assert not editor.reason.isHidden() and "1 characters over the limit" in editor.reason.text()
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as blocker:
        editor.edit.textCursor().deletePreviousChar()
    assert blocker.args == [True] and not is_red(editor.counter)


def test_v3_100_terms_pass_101_fail(editor):
    editor.set_protocol("v3")
    editor.edit.setPlainText("\n".join(f"term{i}" for i in range(100)))
    assert editor.counter.text().startswith("100 / 100 terms") and editor.is_valid()
    editor.edit.appendPlainText("term100")
    assert editor.counter.text().startswith("101 / 100 terms") and not editor.is_valid()
    assert is_red(editor.counter) and "at most 100 terms" in editor.reason.text()


def test_v3_51_character_term_fails(editor):
    editor.set_protocol("v3")
    editor.edit.setPlainText("a" * 50)
    assert editor.is_valid()
    editor.edit.setPlainText("b" * 51)
    assert not editor.is_valid() and "51 characters" in editor.reason.text()
    assert "longest 51 / 50" in editor.counter.text()


def test_switching_protocol_rechecks(editor, qtbot):
    editor.edit.setPlainText("c" * 300)          # fine for v2 (300 of 2500), too long for v3
    assert editor.is_valid()
    with qtbot.waitSignal(editor.validity_changed, timeout=2000):
        editor.set_protocol("v3")
    assert not editor.is_valid()


def test_non_ascii_counted_as_characters(editor):
    editor.edit.setPlainText("Zoë\n日本語\nNguyễn")
    assert editor.terms() == ["Zoë", "日本語", "Nguyễn"]
    assert editor.counter.text() == "12 / 2500 characters"
    editor.set_protocol("v3")
    editor.edit.setPlainText("ü" * 50)
    assert editor.is_valid()


def paste(editor, text):
    mime = QMimeData()
    mime.setText(text)
    editor.edit.insertFromMimeData(mime)


def test_paste_comma_separated_splits_into_lines(editor):
    paste(editor, "Kubernetes, gRPC ,, PySide6,  AssemblyAI ")
    assert editor.edit.toPlainText() == "Kubernetes\ngRPC\nPySide6\nAssemblyAI"
    assert editor.terms() == ["Kubernetes", "gRPC", "PySide6", "AssemblyAI"]


def test_paste_after_existing_text_starts_a_new_line(editor):
    editor.edit.setPlainText("first")
    editor.edit.moveCursor(QTextCursor.MoveOperation.End)
    paste(editor, "second, third")
    assert editor.terms() == ["first", "second", "third"]


def test_paste_through_the_clipboard(editor, qapp):
    qapp.clipboard().setText("alpha, beta")
    if qapp.clipboard().text() != "alpha, beta":
        pytest.skip("no clipboard on this platform plugin")
    editor.edit.paste()
    assert editor.terms() == ["alpha", "beta"]


def test_blanks_and_duplicates_removed_with_a_note(editor):
    editor.edit.setPlainText("Foo\n\n  \nfoo\nBar\nFOO")
    assert editor.terms() == ["Foo", "Bar"]
    assert editor.counter.text() == "6 / 2500 characters"
    assert "2 duplicate terms will be ignored" in editor.note.text()
    editor.tidy()
    assert editor.edit.toPlainText() == "Foo\nBar"
    assert editor.note.isHidden()


def test_set_terms_cleans(editor):
    editor.set_terms(["a", "A", " b "])
    assert editor.edit.toPlainText() == "a\nb"


def test_import_file_appends_new_terms(editor, tmp_path):
    editor.edit.setPlainText("Kubernetes")
    path = tmp_path / "terms.csv"
    path.write_text("\ufeffkubernetes, gRPC\nZoë,,\n", encoding="utf-8")   # BOM, dup, blank
    assert editor.import_file(path) == 2
    assert editor.terms() == ["Kubernetes", "gRPC", "Zoë"]


@pytest.mark.parametrize("content, message", [(b"\xff\xfe\x00bad", "not UTF-8"),
                                              (None, "Could not read")])
def test_import_bad_file_changes_nothing(editor, tmp_path, content, message):
    editor.edit.setPlainText("keep")
    path = tmp_path / "terms.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        editor.import_file(path)
    assert editor.terms() == ["keep"]
