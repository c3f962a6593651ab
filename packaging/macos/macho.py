"""The lowest macOS a bundle runs on, read from its Mach-O binaries (no Xcode tools needed).

Each binary records the minimum OS it was built for (``LC_BUILD_VERSION`` minos, or the older
``LC_VERSION_MIN_MACOSX``). The app's ``LSMinimumSystemVersion`` is the highest of these: a
PySide6 or av wheel built for macOS 13 makes the whole app need 13, whatever Python needed.

    python packaging/macos/macho.py <file or folder>...   # prints the minimum, e.g. 13.0
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Iterable

MH_MAGIC_64, MH_MAGIC = 0xFEEDFACF, 0xFEEDFACE           # as read little-endian
FAT_MAGIC, FAT_MAGIC_64 = 0xCAFEBABE, 0xCAFEBABF          # big-endian header
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
PLATFORM_MACOS = 1
FALLBACK = (11, 0)      # Python.org's and PyInstaller's own floor for arm64 and universal builds


def _decode(version: int) -> tuple[int, int]:
    return version >> 16, (version >> 8) & 0xFF


def _thin_minimum(data: bytes, offset: int = 0) -> tuple[int, int] | None:
    if len(data) < offset + 28:
        return None
    magic = struct.unpack_from("<I", data, offset)[0]
    if magic not in (MH_MAGIC_64, MH_MAGIC):
        return None
    ncmds = struct.unpack_from("<I", data, offset + 16)[0]
    pos = offset + (32 if magic == MH_MAGIC_64 else 28)
    found: tuple[int, int] | None = None
    for _ in range(ncmds):
        if pos + 8 > len(data):
            break
        cmd, size = struct.unpack_from("<II", data, pos)
        if size < 8:
            break
        if cmd == LC_BUILD_VERSION and pos + 16 <= len(data):
            platform, minos = struct.unpack_from("<II", data, pos + 8)
            if platform == PLATFORM_MACOS:
                found = _decode(minos)
        elif cmd == LC_VERSION_MIN_MACOSX and pos + 12 <= len(data):
            found = _decode(struct.unpack_from("<I", data, pos + 8)[0])
        pos += size
    return found


def minimum_of_file(path: Path) -> tuple[int, int] | None:
    """The highest minimum macOS of the slices in one file; None when it is not Mach-O."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (be_magic,) = struct.unpack(">I", head[:4])
            (le_magic,) = struct.unpack("<I", head[:4])
            if be_magic not in (FAT_MAGIC, FAT_MAGIC_64) and le_magic not in (MH_MAGIC, MH_MAGIC_64):
                return None
            f.seek(0)
            data = f.read()
    except OSError:
        return None
    if be_magic in (FAT_MAGIC, FAT_MAGIC_64):
        count = struct.unpack_from(">I", data, 4)[0]
        if count > 32:              # Java class files share CAFEBABE; they have a big count here
            return None
        entry = 32 if be_magic == FAT_MAGIC_64 else 20
        mins = []
        for i in range(count):
            base = 8 + i * entry
            if be_magic == FAT_MAGIC_64:
                offset = struct.unpack_from(">Q", data, base + 8)[0]
            else:
                offset = struct.unpack_from(">I", data, base + 8)[0]
            m = _thin_minimum(data, offset)
            if m:
                mins.append(m)
        return max(mins) if mins else None
    return _thin_minimum(data)


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink())
        elif path.is_file():
            yield path


def bundle_minimum(paths: Iterable[Path]) -> tuple[str, dict[str, tuple[int, int]]]:
    """("13.0", {file: (13, 0), ...}) over every Mach-O file in ``paths``; FALLBACK when none."""
    per_file = {str(p): m for p in _files(paths) if (m := minimum_of_file(p))}
    highest = max([FALLBACK, *per_file.values()])
    return f"{highest[0]}.{highest[1]}", per_file


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    version, per_file = bundle_minimum(Path(a) for a in argv)
    top = sorted(per_file.items(), key=lambda kv: kv[1], reverse=True)[:5]
    for name, (major, minor) in top:
        print(f"  {major}.{minor}  {name}", file=sys.stderr)
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
