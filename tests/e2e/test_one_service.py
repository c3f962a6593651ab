"""The overlay and ``--headless`` are one product: the same settings give the same run.

Each test below failed while the two fronts decided "what does this run use" separately:
headless ignored the saved microphone, the GUI split a quoted vocabulary term at its comma,
``--chunk-ms 20`` was an error in one front and silently clamped in the other, and headless could
rewrite a settings file it only had to read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser
from app.core.credentials import Secret
from app.core.run_plan import overrides_from_args
from app.core.settings import Settings
from tests.e2e.test_cli import KEY, REPO, cli_env

VOCAB_FLAG = '"Smith, John", Kubernetes'
VOCAB_TERMS = ["Smith, John", "Kubernetes"]
SENTENCE = "Good morning, everyone."


def write_settings(config_home: Path, values: dict) -> Path:
    """A settings file exactly as the app saves it (QSettings INI)."""
    from app.qt.settings_store import QSettingsStore
    path = config_home / "caption-overlay" / "settings.ini"
    store = QSettingsStore(str(path))
    settings = Settings(store)
    for key, value in values.items():
        settings.set(key, value)
    assert store.sync() is None
    return path


def headless(args, config_home: Path, env_extra: dict | None = None, timeout: float = 60):
    env = cli_env(KEY)
    env["XDG_CONFIG_HOME"] = str(config_home)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "app", "--headless", *args], cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)


def gui_run(qtbot, settings: Settings, argv: list[str], tmp_path: Path):
    """The overlay's Controller, real service and pipelines, until the file source ends."""
    from app.qt.controller import Controller
    args = build_parser().parse_args(argv)
    controller = Controller(settings, overrides=overrides_from_args(args),
                            transcript_dir=tmp_path / "gui-transcripts",
                            key_loader=lambda: Secret(KEY))
    errors = []
    controller.error.connect(errors.append)
    controller.start()
    try:
        if controller.running:
            qtbot.waitUntil(lambda: not controller.running, timeout=60000)
    finally:
        controller.shutdown()
    return controller, errors


@pytest.mark.timeout(180)
def test_vocabulary_reaches_the_server_the_same_from_gui_and_cli(qtbot, loopback_factory,
                                                                  speech_wav, tmp_path):
    wav = speech_wav(SENTENCE, tail_ms=900)
    server = loopback_factory(api_keys=(KEY,), script=[SENTENCE] * 4)
    base = {"engine/engine": "assemblyai", "connection/server_url": server.url,
            "transcript/enabled": False}
    sent = {}
    # GUI, saved vocabulary and from --vocabulary
    from app.core.settings import DictStore
    gui_saved = Settings(DictStore({**base, "recognition/vocabulary": VOCAB_TERMS}))
    gui_run(qtbot, gui_saved, ["--source", f"file:{wav}"], tmp_path)
    sent["gui saved"] = json.loads(server.sessions[-1].query["keyterms_prompt"])
    gui_run(qtbot, Settings(DictStore(base)), ["--source", f"file:{wav}", "--vocabulary", VOCAB_FLAG],
            tmp_path)
    sent["gui flag"] = json.loads(server.sessions[-1].query["keyterms_prompt"])
    # CLI, saved vocabulary and from --vocabulary
    home = tmp_path / "config"
    write_settings(home, {**base, "recognition/vocabulary": VOCAB_TERMS})
    proc = headless(["--source", f"file:{wav}"], home)
    assert proc.returncode == 0, proc.stderr
    sent["cli saved"] = json.loads(server.sessions[-1].query["keyterms_prompt"])
    other = tmp_path / "config2"
    write_settings(other, base)
    proc = headless(["--source", f"file:{wav}", "--vocabulary", VOCAB_FLAG], other)
    assert proc.returncode == 0, proc.stderr
    sent["cli flag"] = json.loads(server.sessions[-1].query["keyterms_prompt"])
    assert sent == {name: VOCAB_TERMS for name in sent}


def test_the_same_chunk_size_rule_in_both_fronts(qtbot, speech_wav, tmp_path):
    from app.core.settings import DictStore
    wav = speech_wav(SENTENCE)
    argv = ["--source", f"file:{wav}", "--engine", "assemblyai", "--chunk-ms", "20"]
    controller, errors = gui_run(qtbot, Settings(DictStore({"transcript/enabled": False})), argv,
                                 tmp_path)
    proc = headless(argv[:4] + ["--chunk-ms", "20"], tmp_path / "config")
    assert proc.returncode == 2
    message = "Chunk size 20 ms is outside the v3 limits (50-1000 ms)."
    assert errors and errors[-1] == message
    assert message in proc.stderr
    assert controller.status.state.value == "error"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damaged", [False, True])
def test_headless_leaves_the_settings_file_byte_for_byte_unchanged(loopback_factory, speech_wav,
                                                                    tmp_path, damaged):
    wav = speech_wav(SENTENCE, tail_ms=900)
    server = loopback_factory(api_keys=(KEY,), script=[SENTENCE])
    home = tmp_path / "config"
    path = write_settings(home, {"engine/engine": "assemblyai", "connection/server_url": server.url,
                                 "recognition/silence_ms": 500})
    if damaged:   # a torn write: QSettings cannot parse the tail
        path.write_bytes(path.read_bytes() + b"\n[broken\x00section\nvalue=\"unterminated\n")
    os.utime(path, (1_000_000_000, 1_000_000_000))
    before, mtime = _digest(home), path.stat().st_mtime
    proc = headless(["--source", f"file:{wav}"], home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [SENTENCE]          # the saved server URL was used
    assert _digest(home) == before and path.stat().st_mtime == mtime   # nothing added or rewritten


@pytest.mark.pulse
@pytest.mark.timeout(120)
def test_headless_records_from_the_saved_microphone(pulse_audio, loopback_factory, speech_wav,
                                                    tmp_path):
    # A second microphone ("headset") beside the default one; only the headset hears speech.
    pulse_audio.add_null_sink("headsetsink")
    pulse_audio.pactl("load-module", "module-remap-source", "source_name=headset",
                      "master=headsetsink.monitor")
    server = loopback_factory(api_keys=(KEY,), script=[SENTENCE])
    home = tmp_path / "config"
    write_settings(home, {"engine/engine": "assemblyai", "connection/server_url": server.url,
                          "audio/source": "mic", "audio/mic_device": "headset",
                          "recognition/silence_ms": 500})
    env = {k: pulse_audio.env[k] for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    env["XDG_CONFIG_HOME"] = str(home)
    run = subprocess.Popen([sys.executable, "-m", "app", "--headless", "--json"], cwd=REPO,
                           env={**cli_env(KEY), **env}, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.wait_for(lambda: server.sessions and server.sessions[0].audio_ms >= 300, 30), \
            run.stderr.read() if run.poll() is not None else "no audio reached the server"
        pulse_audio.play(speech_wav(SENTENCE, lead_ms=200, tail_ms=1200), device="headsetsink")
        assert server.wait_for(lambda: any(s.finals for s in server.sessions), 20)
    finally:
        out, err = run.communicate("stop\n", timeout=30)
    finals = [json.loads(line) for line in out.splitlines() if '"final"' in line]
    assert [f["text"] for f in finals] == [SENTENCE], err
    assert all(f["source"] == "mic" for f in finals)
