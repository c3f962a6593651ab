"""Where a run translates: flags are checked strictly, saved choices fall back with a notice."""

import json

import pytest

from app.cli import EXIT_USAGE, build_parser
from app.core.credentials import Secret
from app.core.run_plan import PlanError, RunValues, overrides_from_args, plan_run
from app.core.settings import RESTART_KEYS, DictStore, Settings
from app.headless import start_error_code


def plan(*argv, store=None, offline=(True, "")):
    args = build_parser().parse_args(["--headless", *argv])
    values = RunValues(Settings(DictStore(store or {})), overrides_from_args(args))
    return plan_run(values, Secret("k"), offline_available=lambda: offline)


def test_translate_to_switches_a_model_without_gateway_to_pro_with_a_notice():
    p = plan("--translate-to", "Spanish")
    assert p.translate_to == "es"
    assert p.config.speech_model == "universal-3-6-pro"
    gateway = json.loads(p.config.llm_gateway)
    assert gateway["model"] == "gemini-2.5-flash-lite" and "Spanish" in gateway["messages"][0]["content"]
    assert any("universal-3-6-pro" in n and "instead of universal-streaming-english" in n
               for n in p.notes)


def test_a_pro_model_is_kept_and_the_llm_model_flag_is_used():
    p = plan("--translate-to", "pt-br", "--translate-model", "gpt-4.1-mini",
             store={"connection/speech_model": "universal-3-5-pro"})
    assert p.config.speech_model == "universal-3-5-pro" and p.translate_to == "pt-BR"
    assert json.loads(p.config.llm_gateway)["model"] == "gpt-4.1-mini"
    assert not p.notes


def test_saved_target_and_context_translate():
    p = plan(store={"translation/target": "German", "translation/context": "Names: Añejo"})
    assert p.translate_to == "de"
    assert "Names: Añejo" in json.loads(p.config.llm_gateway)["messages"][0]["content"]


def test_no_target_no_gateway():
    p = plan()
    assert p.translate_to is None and p.config.llm_gateway is None


@pytest.mark.parametrize("argv, match", [
    (["--translate-to", "es", "--speech-model", "universal-streaming-english"],
     "Universal-3 Pro model"),
    (["--translate-to", "es", "--region", "eu"], "not yet available in the EU region"),
    (["--translate-to", "es", "--protocol", "v2"], "v2"),
    (["--translate-to", "es", "--engine", "local"], "offline engine"),
    (["--translate-to", "Klingonese"], "not a language"),
    (["--translate-to", " "], "needs a language"),
    (["--translate-model", "gpt-4.1-mini"], "needs --translate-to"),
    (["--translate-to", "es", "--translate-model", "two words"], "LLM model name"),
])
def test_flags_this_run_cannot_honour_are_usage_errors(argv, match):
    with pytest.raises(PlanError, match=match) as raised:
        plan(*argv)
    assert start_error_code(raised.value) == EXIT_USAGE


@pytest.mark.parametrize("store, match", [
    ({"connection/region": "eu"}, "not yet available in the EU region"),
    ({"connection/protocol": "v2"}, "v2"),
    ({"engine/engine": "local"}, "offline engine"),
    ({"translation/context": "x" * 400}, "at most"),
])
def test_saved_target_the_run_cannot_honour_is_a_notice_and_off(store, match):
    p = plan(store={"translation/target": "es", **store})
    assert p.config.llm_gateway is None and p.translate_to is None
    assert any(match in n and n.startswith("Translation is off") for n in p.notes)


def test_translation_changes_restart_the_run():
    assert {"translation/target", "translation/show", "translation/model",
            "translation/context"} <= RESTART_KEYS
