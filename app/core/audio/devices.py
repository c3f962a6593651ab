"""Which audio sources exist, what ``--source`` calls them, and opening them.

Source specs: ``file:PATH`` | ``mic`` | ``mic:NAME`` | ``system`` | ``system:NAME`` | ``both``.

* Linux with PulseAudio/PipeWire: sources come from ``pactl``; microphones are the non-monitor
  sources, system audio is the monitor of an output. Both are opened on ALSA's ``pulse`` device
  with ``PULSE_SOURCE`` (Debian's PortAudio has no Pulse host API). ``mic`` opens the pulse
  device *without* naming a source, so the sound server moves the stream when the default
  microphone changes; ``system`` follows the default output by polling it.
* Windows: microphones from PortAudio; system audio is WASAPI loopback through PyAudioWPatch.
* macOS: microphones from PortAudio; system audio needs a loopback driver such as BlackHole.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.audio import pulse
from app.core.audio.errors import AudioSourceError, DeviceNotFound
from app.core.audio.pyaudio_source import (CaptureTarget, PyAudioSource, load_pyaudio,
                                           new_pyaudio)
from app.core.audio.source import AudioSource, WavFileSource, check_audio_file

MIC, SYSTEM, FILE = "mic", "system", "file"

# Names of virtual loopback drivers people install on macOS to capture what the speakers play.
MAC_LOOPBACK_HINTS = ("blackhole", "soundflower", "loopback audio", "background music",
                      "vb-cable", "eqmac", "ishowu")

MAC_LOOPBACK_HELP = (
    "macOS does not let apps record what the speakers play without a loopback driver. Install "
    "BlackHole (free: https://existential.audio/blackhole/ or `brew install blackhole-2ch`), then in "
    "Audio MIDI Setup create a Multi-Output Device with your speakers and BlackHole 2ch and choose it "
    "as the sound output. BlackHole then appears as a system-audio source "
    "(--source system:BlackHole).")
WINDOWS_LOOPBACK_HELP = (
    "System audio on Windows is captured through WASAPI loopback, which needs the PyAudioWPatch "
    "package (`pip install PyAudioWPatch`). It is not installed, so only microphones are available.")
LINUX_NO_PULSE_HELP = (
    "System audio on Linux is the monitor of an output of PulseAudio or PipeWire (pipewire-pulse), "
    "listed with pactl. No such sound server answered ({reason}).")


@dataclass(frozen=True)
class DeviceInfo:
    kind: str                  # "mic" | "system"
    name: str                  # what --source takes after "mic:" / "system:"
    description: str           # human name
    is_default: bool = False
    backend: str = "portaudio"  # "pulse" | "portaudio" | "wasapi-loopback" | "loopback-driver"

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.name}"


def platform_name() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _module_name() -> str:
    """PyAudioWPatch is a superset of PyAudio (adds WASAPI loopback); prefer it on Windows."""
    if platform_name() == "windows":
        try:
            import pyaudiowpatch  # noqa: F401
            return "pyaudiowpatch"
        except ImportError:
            pass
    return "pyaudio"


# --- PortAudio device table ---------------------------------------------------------------------
@dataclass(frozen=True)
class _PaDevice:
    index: int
    name: str
    host_api: str
    max_input: int
    rate: int
    loopback: bool = False


def _pa_inputs(pa, *, default_host_only: bool = False) -> list[_PaDevice]:
    try:
        default_host = pa.get_default_host_api_info()["index"]
    except Exception:
        default_host = None
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        if int(d.get("maxInputChannels", 0)) < 1:
            continue
        if default_host_only and default_host is not None and d.get("hostApi") != default_host:
            continue
        try:
            host = pa.get_host_api_info_by_index(d["hostApi"])["name"]
        except Exception:
            host = ""
        out.append(_PaDevice(i, str(d["name"]), host, int(d["maxInputChannels"]),
                             int(d.get("defaultSampleRate") or 0), bool(d.get("isLoopbackDevice", False))))
    return out


def _pa_default_input(pa) -> int | None:
    try:
        return int(pa.get_default_input_device_info()["index"])
    except (IOError, OSError, KeyError):
        return None


def _pa_pulse_device(pa) -> _PaDevice:
    for d in _pa_inputs(pa):
        if d.name == "pulse":
            return d
    raise AudioSourceError(
        "PortAudio has no ALSA 'pulse' device, so PulseAudio/PipeWire sources cannot be opened. "
        "Install the ALSA PulseAudio plugin (Debian/Ubuntu: libasound2-plugins; Fedora: "
        "alsa-plugins-pulseaudio).")


def _target_from_pa(d: _PaDevice, session_rate: int) -> CaptureTarget:
    # Session rate first (no conversion when the device can), the native rate as the fallback.
    return CaptureTarget(d.index, d.name, rates=[session_rate, d.rate],
                         channels=1, max_channels=d.max_input, identity=f"pa:{d.name}")


def _target_from_pulse(pa, source: pulse.PulseSource | None, description: str,
                       pin: bool) -> CaptureTarget:
    dev = _pa_pulse_device(pa)
    rates = [source.rate] if source and source.rate else []
    channels = source.channels if source and source.channels else 1
    return CaptureTarget(dev.index, description, rates=rates, channels=min(channels, 8),
                         max_channels=min(dev.max_input, 8),
                         pulse_source=source.name if (pin and source) else None,
                         identity=f"pulse:{source.name if source else ''}")


# --- matching names -----------------------------------------------------------------------------
def _match(wanted: str, candidates: list[tuple[object, tuple[str, ...]]]):
    """Exact (case-insensitive) name match first, then a substring of any alias."""
    w = wanted.strip().casefold()
    for obj, aliases in candidates:
        if any(a and a.casefold() == w for a in aliases):
            return obj
    for obj, aliases in candidates:
        if any(a and w in a.casefold() for a in aliases):
            return obj
    return None


# --- listing --------------------------------------------------------------------------------------
def _pulse_devices() -> list[DeviceInfo]:
    info = pulse.info()
    out = []
    for s in pulse.list_sources():
        if s.is_monitor:
            out.append(DeviceInfo(SYSTEM, s.name, s.description,
                                  is_default=s.monitor_of == info.default_sink, backend="pulse"))
        else:
            out.append(DeviceInfo(MIC, s.name, s.description,
                                  is_default=s.name == info.default_source, backend="pulse"))
    return out


def list_devices() -> list[DeviceInfo]:
    """Inputs and system-audio sources, named as ``--source`` takes them."""
    plat = platform_name()
    if plat == "linux" and pulse.available():
        return _pulse_devices()
    module = load_pyaudio(_module_name())
    pa = new_pyaudio(module)
    try:
        default = _pa_default_input(pa)
        windows = plat == "windows"
        out = []
        for d in _pa_inputs(pa, default_host_only=windows):
            if d.loopback:
                continue
            looks_loopback = plat == "macos" and any(h in d.name.casefold() for h in MAC_LOOPBACK_HINTS)
            out.append(DeviceInfo(SYSTEM if looks_loopback else MIC, d.name, f"{d.name} ({d.host_api})",
                                  is_default=d.index == default,
                                  backend="loopback-driver" if looks_loopback else "portaudio"))
        if windows and hasattr(pa, "get_loopback_device_info_generator"):
            default_loop = _wasapi_default_loopback_name(pa)
            for d in pa.get_loopback_device_info_generator():
                out.append(DeviceInfo(SYSTEM, str(d["name"]), str(d["name"]),
                                      is_default=d["name"] == default_loop, backend="wasapi-loopback"))
        return out
    finally:
        pa.terminate()


def system_audio_unavailable_reason() -> str | None:
    """None when system audio can be captured here, else what to do about it."""
    plat = platform_name()
    if plat == "linux":
        try:
            pulse.info()
            return None
        except pulse.PulseUnavailable as exc:
            return LINUX_NO_PULSE_HELP.format(reason=exc)
    if plat == "windows":
        return None if _module_name() == "pyaudiowpatch" else WINDOWS_LOOPBACK_HELP
    if any(d.kind == SYSTEM for d in list_devices()):
        return None
    return MAC_LOOPBACK_HELP


def print_device_list(out=None) -> int:
    """``caption-overlay --list-devices``; returns the process exit code."""
    from app.cli import EXIT_AUDIO, EXIT_OK

    out = out or sys.stdout
    try:
        devices = list_devices()
    except AudioSourceError as exc:   # includes PulseUnavailable
        print(f"Could not list audio devices: {exc}", file=sys.stderr)
        return EXIT_AUDIO
    mics = [d for d in devices if d.kind == MIC]
    systems = [d for d in devices if d.kind == SYSTEM]
    width = max((len(d.spec) for d in devices), default=10) + 2

    def section(title: str, items: list[DeviceInfo], empty: str) -> None:
        print(title, file=out)
        if not items:
            print(f"  {empty}", file=out)
        for d in items:
            mark = "*" if d.is_default else " "
            print(f"{mark} {d.spec:<{width}} {d.description}", file=out)
        print(file=out)

    section("Microphones (--source mic:NAME):", mics, "none found")
    reason = None if systems else system_audio_unavailable_reason()
    section("System audio, what an output plays (--source system:NAME):", systems,
            reason or "none found")
    print("* = current default. Also: --source mic (default microphone, follows changes), "
          "--source system (the default output), --source both (each captioned separately), "
          "--source file:PATH (a WAV file).", file=out)
    return EXIT_OK


# --- resolvers: what to open, decided at each open() --------------------------------------------
def _pulse_mic_resolver(name: str | None, sample_rate: int) -> Callable:
    def resolve(pa) -> CaptureTarget:
        try:
            _pa_pulse_device(pa)
        except AudioSourceError:
            if name is None:   # no ALSA pulse plugin: PortAudio's own default still works
                return _pa_mic_resolver(None, sample_rate)(pa)
            raise
        sources = pulse.list_sources()
        if name is None:
            default = pulse.info().default_source
            src = next((s for s in sources if s.name == default), None)
            # Not pinned: the server moves the stream when the default microphone changes.
            return _target_from_pulse(pa, src, f"default microphone ({src.description if src else 'pulse'})",
                                      pin=False)
        mics = [s for s in sources if not s.is_monitor]
        src = _match(name, [(s, (s.name, s.description)) for s in mics])
        if src is not None:
            return _target_from_pulse(pa, src, f"microphone {src.description!r}", pin=True)
        dev = _match(name, [(d, (d.name,)) for d in _pa_inputs(pa) if d.name not in ("pulse", "default")])
        if dev is not None:
            return _target_from_pa(dev, sample_rate)
        raise DeviceNotFound(f"mic:{name}", [f"mic:{s.name}" for s in mics])
    return resolve


def _pulse_system_resolver(name: str | None) -> Callable:
    def resolve(pa) -> CaptureTarget:
        monitors = [s for s in pulse.list_sources() if s.is_monitor]
        if name is None:
            sink = pulse.info().default_sink
            src = next((s for s in monitors if s.monitor_of == sink), None)
            if src is None:
                raise DeviceNotFound("system (the default output)", [f"system:{s.name}" for s in monitors])
            return _target_from_pulse(pa, src, f"system audio of {src.description!r}", pin=True)
        src = _match(name, [(s, (s.name, s.monitor_of or "", s.description)) for s in monitors])
        if src is None:
            raise DeviceNotFound(f"system:{name}", [f"system:{s.name}" for s in monitors])
        return _target_from_pulse(pa, src, f"system audio of {src.description!r}", pin=True)
    return resolve


def _pulse_default_monitor() -> str | None:
    sink = pulse.info().default_sink
    return f"pulse:{next((s.name for s in pulse.list_sources() if s.monitor_of == sink), '')}"


def _pa_mic_resolver(name: str | None, sample_rate: int) -> Callable:
    def resolve(pa) -> CaptureTarget:
        inputs = [d for d in _pa_inputs(pa) if not d.loopback]
        if name is None:
            idx = _pa_default_input(pa)
            dev = next((d for d in inputs if d.index == idx), None)
            if dev is None:
                raise DeviceNotFound("mic (the default microphone)", [f"mic:{d.name}" for d in inputs])
            target = _target_from_pa(dev, sample_rate)
            target.description = f"default microphone ({dev.name})"
            return target
        preferred = [d for d in _pa_inputs(pa, default_host_only=True) if not d.loopback]
        dev = _match(name, [(d, (d.name,)) for d in preferred + inputs])
        if dev is None:
            raise DeviceNotFound(f"mic:{name}", [f"mic:{d.name}" for d in preferred or inputs])
        return _target_from_pa(dev, sample_rate)
    return resolve


def _wasapi_default_loopback_name(pa) -> str | None:
    try:
        return str(pa.get_default_wasapi_loopback()["name"])
    except Exception:
        return None


def _wasapi_loopback_resolver(name: str | None) -> Callable:
    def resolve(pa) -> CaptureTarget:
        loops = list(pa.get_loopback_device_info_generator())
        if name is None:
            try:
                d = pa.get_default_wasapi_loopback()
            except Exception:
                d = None
        else:
            d = _match(name, [(d, (str(d["name"]),)) for d in loops])
        if d is None:
            raise DeviceNotFound(f"system:{name}" if name else "system (the default output)",
                                 [f"system:{x['name']}" for x in loops])
        # Loopback streams only run at the output's own format: open that, convert ourselves.
        return CaptureTarget(int(d["index"]), f"system audio of {d['name']!r}",
                             rates=[int(d["defaultSampleRate"])], channels=int(d["maxInputChannels"]),
                             max_channels=int(d["maxInputChannels"]), identity=f"wasapi:{d['name']}",
                             poll=True)
    return resolve


def _mac_loopback_resolver(name: str | None, sample_rate: int) -> Callable:
    def resolve(pa) -> CaptureTarget:
        inputs = _pa_inputs(pa)
        loops = [d for d in inputs if any(h in d.name.casefold() for h in MAC_LOOPBACK_HINTS)]
        if name is None:
            if not loops:
                raise AudioSourceError(MAC_LOOPBACK_HELP)
            dev = loops[0]
        else:  # any input may be a user-built aggregate device: accept it by name
            dev = _match(name, [(d, (d.name,)) for d in loops + inputs])
            if dev is None:
                raise DeviceNotFound(f"system:{name}", [f"system:{d.name}" for d in loops] or
                                     ["none (see --list-devices)"])
        target = _target_from_pa(dev, sample_rate)
        target.description = f"system audio via {dev.name!r}"
        # A Multi-Output Device plays into the driver's first two channels; opening one would
        # drop the right channel, and averaging more would only lower the level.
        target.channels = max(1, min(dev.max_input, 2))
        return target
    return resolve


# --- opening --------------------------------------------------------------------------------------
def _use_pulse() -> bool:
    return platform_name() == "linux" and pulse.available()


def _mic_source(name: str | None, sample_rate: int, chunk_ms: int) -> PyAudioSource:
    if _use_pulse():
        resolver = _pulse_mic_resolver(name, sample_rate)
    else:
        resolver = _pa_mic_resolver(name, sample_rate)
    return PyAudioSource(MIC, resolver, sample_rate, chunk_ms, module_name=_module_name())


def _system_source(name: str | None, sample_rate: int, chunk_ms: int) -> PyAudioSource:
    plat = platform_name()
    if plat == "linux":
        try:
            pulse.info()
        except pulse.PulseUnavailable as exc:
            raise AudioSourceError(LINUX_NO_PULSE_HELP.format(reason=exc)) from None
        watch = _pulse_default_monitor if name is None else None
        return PyAudioSource(SYSTEM, _pulse_system_resolver(name), sample_rate, chunk_ms, watch=watch)
    if plat == "windows":
        if _module_name() != "pyaudiowpatch":
            raise AudioSourceError(WINDOWS_LOOPBACK_HELP)
        return PyAudioSource(SYSTEM, _wasapi_loopback_resolver(name), sample_rate, chunk_ms,
                             module_name="pyaudiowpatch")
    return PyAudioSource(SYSTEM, _mac_loopback_resolver(name, sample_rate), sample_rate, chunk_ms)


def _check_resolves(source: PyAudioSource) -> None:
    """Fail at start (DeviceNotFound with the list) rather than inside the session."""
    pa = new_pyaudio(load_pyaudio(source._module_name))
    try:
        source._resolver(pa)
    except pulse.PulseUnavailable as exc:
        raise AudioSourceError(f"The sound server did not answer: {exc}") from None
    finally:
        pa.terminate()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"mic:USB Mic"`` → ("mic", "USB Mic"); ``"both"`` → ("both", None)."""
    kind, sep, rest = (spec or "").strip().partition(":")
    kind = kind.strip().casefold()
    if kind not in (MIC, SYSTEM, FILE, "both"):
        raise AudioSourceError(
            f"Unknown audio source {spec!r}. Use mic, mic:NAME, system, system:NAME, both or "
            "file:PATH (see --list-devices).")
    name = rest if sep else None
    if kind == FILE and not name:
        raise AudioSourceError("file: needs a path, e.g. file:/home/me/talk.wav")
    if kind == "both" and name:
        raise AudioSourceError("both takes no device name; it uses the default microphone and output.")
    if name is not None and kind != FILE:
        name = name.strip() or None
    return kind, name


def open_sources(spec: str, sample_rate: int, chunk_ms: int, *, check: bool = True) -> list[AudioSource]:
    """Build the sources for ``spec`` (not yet opened; the pipeline opens them).

    Raises ``DeviceNotFound`` (message lists what is available) or ``AudioSourceError``.
    """
    kind, name = parse_spec(spec)
    if kind == FILE:
        path = Path(name).expanduser()
        check_audio_file(path)
        return [WavFileSource(path, sample_rate, chunk_ms)]
    if kind == MIC:
        sources = [_mic_source(name, sample_rate, chunk_ms)]
    elif kind == SYSTEM:
        sources = [_system_source(name, sample_rate, chunk_ms)]
    else:
        sources = [_mic_source(None, sample_rate, chunk_ms), _system_source(None, sample_rate, chunk_ms)]
    if check:
        for s in sources:
            _check_resolves(s)
    return sources
