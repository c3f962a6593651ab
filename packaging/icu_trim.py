"""Rebuild PySide6's ICU data library (libicudata.so.NN, ~32 MB) without the parts Qt never reads.

Qt uses ICU for case mapping, normalisation, text boundaries (line breaking of captions),
collation and, only for legacy encodings, converters. It formats numbers, dates, currencies,
units and language names from its own CLDR tables, never from ICU's. So these go:

- every charset converter table (*.cnv): ICU's UTF-8/16/32, ASCII and Latin-1 are algorithmic;
- unit/, curr/, lang/, region/, zone/ (display names), rbnf/ (spelled-out numbers), translit/;
- collation tailorings and locale bundles other than root and English (lookups fall back to
  root, i.e. the Unicode default order and rules).

Kept: the Unicode property/normalisation data, break-iterator rules and dictionaries (Thai, CJK,
Khmer, Lao, Burmese line breaking), root collation (ucadata), time-zone rules, pool/res_index.
Needs ICU's own tools (Debian package icu-devtools: icupkg, genccode) and a C compiler. Linux only.

    python packaging/icu_trim.py IN/libicudata.so.73 OUT_DIR     # → OUT_DIR/libicudata.so.73
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DROP_DIRS = ("unit/", "curr/", "lang/", "region/", "zone/", "rbnf/", "translit/")
KEEP_LOCALES = re.compile(r"^(root|en|en_US|en_GB|en_001|en_150|en_US_POSIX)\.res$")
LOCALE_RES = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]*)*\.res$")
NOT_LOCALES = {"res_index.res", "pool.res"}


class TrimUnavailable(Exception):
    """The tools are missing; the caller ships the original library."""


def tools_available() -> str | None:
    """None when trimming can run here, else what is missing."""
    missing = [t for t in ("icupkg", "genccode", "readelf") if shutil.which(t) is None]
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        missing.append("cc")
    if not sys.platform.startswith("linux"):
        return "only implemented for Linux ELF libraries"
    return ("missing " + ", ".join(missing) + " (apt-get install icu-devtools gcc binutils)") if missing else None


def should_drop(item: str) -> bool:
    """``item`` is an icupkg item name without the package prefix, e.g. 'coll/fr.res'."""
    if item.endswith(".cnv"):
        return True
    if item.startswith(DROP_DIRS):
        return True
    if item.startswith("coll/"):
        name = item[len("coll/"):]
        return bool(LOCALE_RES.match(name)) and name not in NOT_LOCALES and not KEEP_LOCALES.match(name)
    if "/" not in item and LOCALE_RES.match(item) and item not in NOT_LOCALES:
        return not KEEP_LOCALES.match(item)
    return False


def _extract_data(library: Path, symbol: str) -> bytes:
    """The bytes of the exported data symbol (ICU's common-format package) inside ``library``."""
    symbols = subprocess.run(["readelf", "-sW", str(library)], check=True, capture_output=True,
                             text=True).stdout
    match = re.search(rf"^\s*\d+:\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+OBJECT\s+GLOBAL\s+\w+\s+(\d+)\s+{symbol}\s*$",
                      symbols, re.M)
    if not match:
        raise TrimUnavailable(f"{library.name} exports no {symbol}")
    address, size, section = int(match.group(1), 16), int(match.group(2), 0), int(match.group(3))
    sections = subprocess.run(["readelf", "-SW", str(library)], check=True, capture_output=True,
                              text=True).stdout
    row = re.search(rf"^\s*\[\s*{section}\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s", sections, re.M)
    if not row:
        raise TrimUnavailable(f"cannot locate section {section} of {library.name}")
    offset = address - int(row.group(1), 16) + int(row.group(2), 16)
    with open(library, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise TrimUnavailable(f"{library.name} is truncated")
    return data


def trim(library: Path, out_dir: Path) -> Path:
    """Write a trimmed copy of ``library`` (same file name and soname) into ``out_dir``."""
    problem = tools_available()
    if problem:
        raise TrimUnavailable(problem)
    library = Path(library)
    match = re.match(r"libicudata\.so\.(\d+)", library.name)
    if not match:
        raise TrimUnavailable(f"{library.name} is not an ICU data library")
    entry = f"icudt{match.group(1)}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        package = tmp / f"{entry}l.dat"
        package.write_bytes(_extract_data(library, entry + "_dat"))
        listing = subprocess.run(["icupkg", "-l", str(package)], check=True, capture_output=True,
                                 text=True).stdout.split()
        prefix = f"{entry}l/"
        drop = [item for item in listing if should_drop(item[len(prefix):] if item.startswith(prefix) else item)]
        (tmp / "drop.txt").write_text("\n".join(drop) + "\n")
        trimmed = tmp / "trimmed" / f"{entry}l.dat"
        trimmed.parent.mkdir()
        subprocess.run(["icupkg", "-r", str(tmp / "drop.txt"), str(package), str(trimmed)],
                       check=True, capture_output=True)
        subprocess.run(["genccode", "-q", "-e", entry, "-a", "gcc", "-d", str(tmp), str(trimmed)],
                       check=True, capture_output=True)
        assembly = next(tmp.glob("*.S"), None) or next(tmp.glob("*.s"), None)
        if assembly is None:
            raise TrimUnavailable("genccode wrote no assembly file")
        compiler = shutil.which("cc") or shutil.which("gcc")
        output = out_dir / library.name
        subprocess.run([compiler, "-shared", "-nostdlib", "-o", str(output), str(assembly),
                        f"-Wl,-soname,{library.name}", "-Wl,-z,noexecstack"],
                       check=True, capture_output=True)
    return output


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: icu_trim.py LIBICUDATA OUT_DIR", file=sys.stderr)
        return 2
    source = Path(argv[0])
    try:
        out = trim(source, Path(argv[1]))
    except (TrimUnavailable, subprocess.CalledProcessError) as exc:
        print(f"not trimmed: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {source.stat().st_size / 1e6:.1f} MB → {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
