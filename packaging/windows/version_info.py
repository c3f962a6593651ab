"""Windows version resource (the "Details" tab of the .exe) generated from app/__init__.py.

build.spec calls ``write_version_file(path)`` on Windows and passes the file to ``EXE(version=...)``.
Run by hand to inspect it:  python packaging/windows/version_info.py OUT.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from identity import read_identity  # noqa: E402


def version_file_text(ident: dict | None = None) -> str:
    """PyInstaller's VSVersionInfo syntax (a Python expression it evaluates)."""
    ident = ident or read_identity()
    vt = ident["version_tuple"]
    dotted = ".".join(str(p) for p in vt)

    def s(value: str) -> str:
        return repr(str(value))

    return f"""# Generated from app/__init__.py by packaging/windows/version_info.py; do not edit.
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={vt!r},
    prodvers={vt!r},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable('040904B0', [
        StringStruct('CompanyName', {s(ident['ORG_NAME'])}),
        StringStruct('FileDescription', {s(ident['APP_NAME'])}),
        StringStruct('FileVersion', {s(dotted)}),
        StringStruct('InternalName', {s(ident['APP_ID'])}),
        StringStruct('LegalCopyright', {s('(c) ' + ident['ORG_NAME'] + ', MIT License')}),
        StringStruct('OriginalFilename', {s(ident['APP_ID'] + '.exe')}),
        StringStruct('ProductName', {s(ident['APP_NAME'])}),
        StringStruct('ProductVersion', {s(ident['__version__'])})
      ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""


def write_version_file(path: str | Path, ident: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(version_file_text(ident), encoding="utf-8")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: version_info.py OUT.txt", file=sys.stderr)
        sys.exit(2)
    print(write_version_file(sys.argv[1]))
