"""Resampler accuracy, aliasing, streaming seams, downmix, clipping and µ-law."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.core.audio.convert import (Converter, Resampler, downmix, mulaw_decode, mulaw_encode,
                                    to_int16)


def _sine(freq, rate, seconds=1.0, amp=10000.0, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.repeat(x, channels) if channels > 1 else x


def _fit_sine(y, rate):
    """Frequency (parabolic-interpolated FFT peak of a Hann-windowed block) and amplitude (RMS·√2)."""
    y = y[len(y) // 4: -len(y) // 4]                 # away from the filter's start/end transients
    win = np.hanning(len(y))
    spec = np.abs(np.fft.rfft(y * win))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2])
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    freq = (k + delta) * rate / len(y)
    amp = np.sqrt(np.mean(y ** 2)) * np.sqrt(2)
    return freq, amp


@pytest.mark.parametrize("src_rate", [44100, 48000, 22050, 8000])
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_sine_keeps_frequency_and_amplitude(src_rate, freq):
    out = Resampler(src_rate, 16000).process(_sine(freq, src_rate, 2.0))
    assert abs(len(out) - 2 * 16000) < 200
    f, a = _fit_sine(out, 16000)
    assert f == pytest.approx(freq, rel=0.01)
    assert a == pytest.approx(10000.0, rel=0.01)


@pytest.mark.parametrize("src_rate", [44100, 48000])
@pytest.mark.parametrize("freq", [9000.0, 11000.0, 15000.0, 20000.0])
def test_content_above_new_nyquist_does_not_alias(src_rate, freq):
    out = Resampler(src_rate, 16000).process(_sine(freq, src_rate, 1.0, amp=30000.0))
    core = out[len(out) // 4: -len(out) // 4]
    rms = np.sqrt(np.mean(core ** 2))
    # a 30000-amplitude tone would alias to |16000·k - f|; it must be ≥ 60 dB down
    assert 20 * np.log10(max(rms, 1e-9) / (30000 / np.sqrt(2))) < -60


def test_block_by_block_equals_one_shot():
    x = np.random.default_rng(1).normal(0, 3000, 48000)
    whole = Resampler(48000, 16000).process(x)
    r = Resampler(48000, 16000)
    sizes = np.random.default_rng(2).integers(1, 2000, 200)
    parts, pos = [], 0
    for n in sizes:
        parts.append(r.process(x[pos:pos + n]))
        pos += n
        if pos >= len(x):
            break
    streamed = np.concatenate(parts)
    n = min(len(streamed), len(whole))
    assert n > 15000
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-6)


def test_passthrough_is_identity():
    x = np.arange(100, dtype=np.float64)
    np.testing.assert_array_equal(Resampler(16000, 16000).process(x), x)


def test_converter_passes_mono_int16_at_the_session_rate_through():
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    conv = Converter(16000, 1, 16000)
    assert conv.identity
    np.testing.assert_array_equal(conv.convert(pcm), pcm)
    assert not Converter(16000, 2, 16000).identity and not Converter(48000, 1, 16000).identity
    # float input (in int16 units) is still rounded and clipped
    np.testing.assert_array_equal(conv.convert(np.array([1.6, 40000.0])), [2, 32767])


def test_downmix_averages_channels_and_drops_partial_frame():
    inter = np.array([100, 300, -50, 50, 7], dtype=np.int16)
    np.testing.assert_array_equal(downmix(inter, 2), [200.0, 0.0])
    np.testing.assert_array_equal(downmix(np.array([1, 2, 3]), 1), [1, 2, 3])


def test_to_int16_clips_instead_of_wrapping():
    out = to_int16(np.array([40000.0, -40000.0, 1.4, -1.6]))
    np.testing.assert_array_equal(out, [32767, -32768, 1, -2])


def test_converter_48k_stereo_to_16k_mono():
    stereo = _sine(1000.0, 48000, 1.0, channels=2)
    out = Converter(48000, 2, 16000).convert(stereo)
    assert out.dtype == np.int16
    f, a = _fit_sine(out.astype(np.float64), 16000)
    assert f == pytest.approx(1000.0, rel=0.01)
    assert a == pytest.approx(10000.0, rel=0.01)


def test_full_scale_input_does_not_wrap_after_resampling():
    # Filter overshoot on a full-scale square wave would wrap int16 without clipping.
    sq = np.sign(np.sin(2 * np.pi * 500 * np.arange(48000) / 48000)) * 32767
    out = Converter(48000, 1, 16000).convert(sq)
    assert out.max() == 32767 and out.min() == -32768
    assert not np.any(np.diff(out.astype(np.int32)) > 60000)   # no +/- full-scale jumps from wrapping


def test_mulaw_round_trip_error_is_within_a_quantisation_step():
    pcm = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    back = mulaw_decode(mulaw_encode(pcm)).astype(np.int32)
    err = np.abs(back - pcm.astype(np.int32))
    # µ-law step grows with magnitude: ≤ 1/16 of the value plus a small floor
    assert np.all(err <= np.abs(pcm.astype(np.int32)) / 16 + 8)
    # every code decodes and re-encodes to itself (except "-0", 0x7F, which is the same as 0xFF)
    codes = np.arange(256, dtype=np.uint8)
    expected = np.where(codes == 0x7F, 0xFF, codes)
    np.testing.assert_array_equal(mulaw_encode(mulaw_decode(codes)), expected)


def test_mulaw_matches_audioop_bit_exactly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    pcm = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    ours = mulaw_encode(pcm).tobytes()
    assert ours == audioop.lin2ulaw(pcm.astype("<i2").tobytes(), 2)
    codes = bytes(range(256))
    theirs = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2")
    np.testing.assert_array_equal(mulaw_decode(np.frombuffer(codes, dtype=np.uint8)), theirs)


@pytest.mark.parametrize("src_rate", [48000, 44100, 32000, 22050, 11025, 8000])
def test_both_filter_paths_agree(src_rate):
    """Large blocks take the per-phase path, tiny ones the gather path: same samples either way."""
    x = np.random.default_rng(3).normal(0, 3000, src_rate)
    big = Resampler(src_rate, 16000).process(x)
    small = Resampler(src_rate, 16000)
    parts = [small.process(x[i:i + 7]) for i in range(0, len(x), 7)]
    np.testing.assert_allclose(np.concatenate(parts)[:len(big)], big[:sum(map(len, parts))], atol=1e-6)


@pytest.mark.parametrize("src_rate", [48000, 44100, 32000, 22050, 11025, 8000])
def test_the_blas_free_product_gives_the_session_the_same_samples_as_a_matrix_product(src_rate):
    """The per-phase path sums with einsum (no BLAS call); a BLAS matrix product over the same
    windows differs only by rounding (~1e-11 of a sample) and never in the int16 sent."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.random.default_rng(4).normal(0, 8000, src_rate * 2)
    r = Resampler(src_rate, 16000)
    out = r.process(x)
    up, down, half = r._up, r._down, r._half
    padded = np.concatenate((np.zeros(half), x))
    windows = sliding_window_view(padded, 2 * half)
    n = np.arange(len(out))
    first = (n * down) // up - half + 1 + half
    reference = np.array([windows[f] @ r._taps[p] for f, p in zip(first, (n * down) % up)])
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(to_int16(out), to_int16(reference))
