"""packaging/numpy_noblas.py: the Linux bundle's numpy without OpenBLAS, and proof that the app's
audio path gives the same samples with it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.packaging.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
noblas = load_script("packaging_numpy_noblas", ROOT / "packaging/numpy_noblas.py")


def test_a_finished_build_is_reused_without_running_anything(tmp_path):
    target = noblas.target_dir("9.9.9", tmp_path)
    target.mkdir(parents=True)
    (target / noblas.DONE).write_text("done")
    assert noblas.prepare("9.9.9", root=tmp_path, run=lambda *a, **k: pytest.fail("rebuilt")) == target


def test_a_build_that_makes_no_wheel_fails_in_plain_words_and_leaves_nothing(tmp_path):
    calls = []
    with pytest.raises(noblas.BuildError, match="pip built no numpy 9.9.9 wheel"):
        noblas.prepare("9.9.9", root=tmp_path, run=lambda cmd, **k: calls.append(cmd))
    assert calls and "-Csetup-args=-Dblas=none" in calls[0] and "--no-cache-dir" in calls[0]
    assert not noblas.target_dir("9.9.9", tmp_path).exists()
    assert not list(tmp_path.glob("numpy-noblas-*"))      # the scratch folder is gone too


def test_a_wheel_of_another_version_is_refused(tmp_path):
    wheel = tmp_path / "numpy-1.0.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"")
    with pytest.raises(noblas.BuildError, match="not a numpy 9.9.9 wheel"):
        noblas.prepare("9.9.9", root=tmp_path / "cache", wheel=wheel, run=lambda *a, **k: None)


def test_a_folder_without_numpy_is_not_taken_for_one(tmp_path):
    with pytest.raises(noblas.BuildError, match="does not hold a numpy|does not import"):
        noblas.blas_of(tmp_path)


def test_the_installed_numpy_reports_its_blas():
    """The check the build relies on reads numpy's own build record (the PyPI wheel: OpenBLAS)."""
    installed = Path(np.__file__).parents[1]
    assert noblas.blas_of(installed) != "none"


RESAMPLE = """
import hashlib, sys
import numpy as np
from app.core.audio.convert import Converter
for rate in (48000, 44100, 32000, 22050, 8000):
    x = (np.random.default_rng(5).normal(0, 6000, rate * 2)).astype(np.int16)
    c = Converter(rate, 1, 16000)
    out = np.concatenate([c.convert(x[i:i + rate // 10]) for i in range(0, len(x), rate // 10)] + [c.flush()])
    print(rate, hashlib.sha256(out.tobytes()).hexdigest())
    r = Converter(rate, 1, 16000)._resampler
    print(rate, "f64", hashlib.sha256(r.process(x.astype(np.float64)).tobytes()).hexdigest())
print("numpy", np.__file__)
"""


def _resample_digests(pythonpath: list[str]) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = subprocess.run([sys.executable, "-c", RESAMPLE], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    return lines[:-1], lines[-1]


@pytest.mark.packaging
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle's numpy")
def test_the_bundles_numpy_has_no_blas_and_resamples_to_the_same_bits():
    """Built (or reused) exactly as build.spec does; the audio path's int16 samples and its float64
    filter output are byte-for-byte those of the registry numpy with OpenBLAS."""
    folder = noblas.prepare()
    assert noblas.blas_of(folder) == "none"
    assert not list(folder.rglob("*openblas*")) and not (folder / "numpy.libs").exists()
    with_blas, where = _resample_digests([str(ROOT)])
    without, where_noblas = _resample_digests([str(folder), str(ROOT)])
    assert str(folder) in where_noblas and str(folder) not in where
    assert len(with_blas) == 10 and without == with_blas
    assert hashlib.sha256(b"").hexdigest() not in " ".join(with_blas)
