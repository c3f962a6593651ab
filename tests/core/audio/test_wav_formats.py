"""WAV files as sox, Audacity and ffmpeg write them: 24-bit (WAVE_FORMAT_EXTENSIBLE), 32/64-bit float."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave

import numpy as np
import pytest

from app.core.audio import devices
from app.core.audio.errors import AudioSourceError, UnsupportedAudio
from app.core.audio.source import WavFileSource

RATE = 16000
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 2) / RATE))   # 0.5 s at half scale


def reference(tmp_path):
    path = tmp_path / "ref16.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((TONE * 32767).astype("<i2").tobytes())
    return path


def write_riff(path, tag, width, data: bytes, channels=1, extensible=False):
    bits = 8 * width
    block = channels * width
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, RATE, RATE * block, block, bits, 22, bits, 0x4) \
            + struct.pack("<H", tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, RATE, RATE * block, block, bits)
    extra = b"LIST" + struct.pack("<I", 4) + b"INFO"       # a chunk readers must skip
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra \
        + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def samples(path) -> np.ndarray:
    src = WavFileSource(path, RATE, 100, realtime=False)
    out = []
    with src:
        while chunk := src.read():
            out.append(np.frombuffer(chunk, dtype="<i2"))
    return np.concatenate(out).astype(np.float64)


def test_pcm16_in_the_session_format_comes_out_bit_exact(tmp_path):
    """16 kHz mono 16-bit is passed through untouched (extreme values included)."""
    pcm = np.concatenate([(TONE * 32767).astype("<i2"), np.array([32767, -32768, 0, -1], "<i2")])
    path = write_riff(tmp_path / "exact.wav", 1, 2, pcm.tobytes())
    np.testing.assert_array_equal(samples(path), pcm.astype(np.float64))


def test_pcm16_at_another_rate_is_still_resampled(tmp_path):
    path = tmp_path / "r48.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.zeros(48000 * 2, "<i2").tobytes())
    assert len(samples(path)) == pytest.approx(RATE, abs=RATE // 50)


def test_float32_and_float64_read_like_pcm16(tmp_path):
    ref = samples(reference(tmp_path))
    for width, dtype in ((4, "<f4"), (8, "<f8")):
        got = samples(write_riff(tmp_path / f"f{width}.wav", 3, width, TONE.astype(dtype).tobytes()))
        assert np.max(np.abs(got - ref)) <= 2


def test_24_bit_extensible_reads_like_pcm16(tmp_path):
    ints = np.round(TONE * 8388607).astype(np.int32)
    raw = b"".join(struct.pack("<i", v)[:3] for v in ints)
    got = samples(write_riff(tmp_path / "p24.wav", 1, 3, raw, extensible=True))
    assert np.max(np.abs(got - samples(reference(tmp_path)))) <= 2


@pytest.mark.skipif(not shutil.which("sox"), reason="sox writes the files users have")
@pytest.mark.parametrize("args", [["-b", "24"], ["-e", "floating-point", "-b", "32"], ["-b", "24", "-c", "2"]])
def test_files_written_by_sox(tmp_path, args):
    ref = reference(tmp_path)
    out = tmp_path / "sox.wav"
    subprocess.run(["sox", str(ref), *args, str(out)], check=True)
    got = samples(out)
    assert np.max(np.abs(got - samples(ref))) <= 2


def test_compressed_or_broken_files_say_what_is_wrong(tmp_path):
    with pytest.raises(UnsupportedAudio, match="compressed audio"):
        WavFileSource(write_riff(tmp_path / "alaw.wav", 6, 1, b"\x00" * 100), RATE, 100).open()
    (tmp_path / "text.wav").write_text("not audio at all")
    with pytest.raises(UnsupportedAudio, match="not a WAV file"):
        WavFileSource(tmp_path / "text.wav", RATE, 100).open()


def test_a_folder_given_as_file_is_named_a_folder(tmp_path):
    with pytest.raises(AudioSourceError, match="is a folder, not an audio file"):
        devices.open_sources(f"file:{tmp_path}", RATE, 100)
    with pytest.raises(AudioSourceError, match="Audio file not found"):
        devices.open_sources(f"file:{tmp_path}/missing.wav", RATE, 100)
