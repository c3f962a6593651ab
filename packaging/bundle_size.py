"""Measure a one-dir bundle: the app proper vs. the offline engine's model and inference runtime.

    python packaging/bundle_size.py dist/caption-overlay [--top N]

The app's size budget (120 MB unpacked on Linux) excludes the offline engine, whose model files
and runtime are reported on their own lines. Sizes are apparent file sizes (what an unpacked
archive occupies before filesystem rounding); symlinks count zero, as they do in a .tar.gz.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_filter import offline_category  # noqa: E402

MB = 1_000_000
# The size target for the app part on Linux, met at 114.1 MB: numpy is rebuilt without OpenBLAS
# (packaging/numpy_noblas.py; 28.5 MB with its gfortran runtime), the single-instance lock is a
# plain Unix socket instead of QtNetwork (4.9 MB with the Kerberos libraries it links),
# cryptography is replaced by the bundle's OpenSSL (packaging/linux/shims/evp_aes.py), and
# everything Qt and the dependencies' optional imports can spare is gone (bundle_filter.py,
# icu_trim.py, build.spec's excludes).
APP_BUDGET_BYTES = 120 * MB
# What the packaging test enforces so the bundle cannot quietly grow: the measured size + ~5 %.
APP_SIZE_CEILING_BYTES = 120 * MB


@dataclass
class BundleSize:
    app: int = 0
    model: int = 0
    runtime: int = 0
    files: int = 0
    largest: Counter = field(default_factory=Counter)   # top-level entry → bytes

    @property
    def total(self) -> int:
        return self.app + self.model + self.runtime

    def lines(self, top: int = 0) -> list[str]:
        out = [f"app (everything but the offline engine): {self.app / MB:.1f} MB",
               f"offline engine model:   {self.model / MB:.1f} MB",
               f"offline engine runtime: {self.runtime / MB:.1f} MB",
               f"total unpacked:         {self.total / MB:.1f} MB in {self.files} files"]
        for name, size in self.largest.most_common(top):
            out.append(f"  {size / MB:7.1f} MB  {name}")
        return out


def measure(bundle: Path) -> BundleSize:
    bundle = Path(bundle)
    internal = bundle / "_internal"
    result = BundleSize()
    for root, _dirs, files in os.walk(bundle):
        for name in files:
            path = Path(root) / name
            if path.is_symlink():
                continue
            size = path.stat().st_size
            result.files += 1
            rel_internal = path.relative_to(internal).as_posix() if internal in path.parents else None
            kind = offline_category(rel_internal) if rel_internal else None
            if kind == "model":
                result.model += size
            elif kind == "runtime":
                result.runtime += size
            else:
                result.app += size
            rel = path.relative_to(bundle).as_posix()
            key = "/".join(rel.split("/")[:2]) if rel.startswith("_internal/") else rel.split("/")[0]
            result.largest[key] += size
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--top", type=int, default=15, help="also list the N largest entries")
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print(f"{args.bundle} is not a PyInstaller one-dir bundle (no _internal/)", file=sys.stderr)
        return 2
    size = measure(args.bundle)
    print("\n".join(size.lines(args.top)))
    return 0 if size.app <= APP_SIZE_CEILING_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
