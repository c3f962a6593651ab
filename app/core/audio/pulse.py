"""PulseAudio / PipeWire (pipewire-pulse) sources through ``pactl``.

Debian's PortAudio 19.6 has no PulseAudio host API: PyAudio only sees the ALSA ``pulse`` and
``default`` devices. So sources are listed with ``pactl`` and one is chosen by setting
``PULSE_SOURCE`` while the ALSA ``pulse`` device is opened (libpulse reads it when the stream's
context is created). ``*.monitor`` sources carry what an output plays: that is system audio.
Text output is parsed under ``LC_ALL=C`` (field names are translated otherwise); it works with
PulseAudio ≥ 12 and PipeWire's pactl alike.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from app.core.audio.errors import AudioSourceError
from app.core.credentials import child_environment

PACTL_TIMEOUT_S = 5.0


class PulseUnavailable(AudioSourceError):
    """No pactl, or no server answering."""


@dataclass(frozen=True)
class PulseSource:
    name: str                    # what PULSE_SOURCE takes, e.g. "alsa_input.usb-...analog-stereo"
    description: str             # human name, e.g. "Yeti Stereo Microphone Analog Stereo"
    monitor_of: str | None       # sink name when this is a monitor (system audio), else None
    rate: int | None = None
    channels: int | None = None

    @property
    def is_monitor(self) -> bool:
        return self.monitor_of is not None


@dataclass(frozen=True)
class PulseInfo:
    default_sink: str | None
    default_source: str | None
    server_name: str = ""        # "pulseaudio" or "PulseAudio (on PipeWire x.y)"


def _run(*args: str) -> str:
    exe = shutil.which("pactl")
    if exe is None:
        raise PulseUnavailable("pactl was not found (install pulseaudio-utils, or pipewire-pulse)")
    env = child_environment(LC_ALL="C")
    try:
        res = subprocess.run([exe, *args], env=env, capture_output=True, text=True,
                             timeout=PACTL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PulseUnavailable("the sound server did not answer within "
                               f"{PACTL_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise PulseUnavailable(f"pactl could not run: {exc}") from None
    if res.returncode != 0:
        raise PulseUnavailable(res.stderr.strip() or f"pactl {' '.join(args)} failed")
    return res.stdout


def available() -> bool:
    """True when a PulseAudio-compatible server answers."""
    try:
        info()
        return True
    except PulseUnavailable:
        return False


def info() -> PulseInfo:
    fields = _fields(_run("info"))
    return PulseInfo(default_sink=_none_if_na(fields.get("Default Sink")),
                     default_source=_none_if_na(fields.get("Default Source")),
                     server_name=fields.get("Server Name", ""))


def list_sources() -> list[PulseSource]:
    return parse_sources(_run("list", "sources"))


def parse_sources(text: str) -> list[PulseSource]:
    """Parse ``LC_ALL=C pactl list sources`` into sources (pure, tested on captured output)."""
    sources: list[PulseSource] = []
    for block in _blocks(text, "Source #"):
        fields = _fields(block)
        name = fields.get("Name")
        if not name:
            continue
        rate, channels = _sample_spec(fields.get("Sample Specification", ""))
        sources.append(PulseSource(
            name=name,
            description=fields.get("Description", name),
            monitor_of=_none_if_na(fields.get("Monitor of Sink")),
            rate=rate, channels=channels))
    return sources


def _blocks(text: str, header: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith(header):
            if current:
                blocks.append("\n".join(current))
            current = [line]
        elif current:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _fields(block: str) -> dict[str, str]:
    """Top-level ``Key: value`` lines (one tab of indent in lists, none in ``pactl info``)."""
    out: dict[str, str] = {}
    for line in block.splitlines():
        stripped = line[1:] if line.startswith("\t") else line
        if not stripped or stripped.startswith(("\t", " ")) or ":" not in stripped:
            continue
        key, _, value = stripped.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _sample_spec(spec: str) -> tuple[int | None, int | None]:
    rate = channels = None
    for part in spec.split():
        if part.endswith("Hz") and part[:-2].isdigit():
            rate = int(part[:-2])
        elif part.endswith("ch") and part[:-2].isdigit():
            channels = int(part[:-2])
    return rate, channels


def _none_if_na(value: str | None) -> str | None:
    if value is None or value in ("n/a", "", "(null)"):
        return None
    return value
