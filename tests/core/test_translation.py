import json

import pytest

from app.core import translation as tr
from app.core.session_config import check_llm_gateway


@pytest.mark.parametrize("text, code", [("Spanish", "es"), ("spanish", "es"), ("es", "es"),
                                        ("pt-br", "pt-BR"), ("Portuguese (Brazil)", "pt-BR"),
                                        ("  German ", "de"), ("gsw", "gsw"), ("sr-Latn", "sr-Latn")])
def test_resolve_language(text, code):
    assert tr.resolve_language(text) == code


@pytest.mark.parametrize("text", ["", "   ", "Klingonese", "e", "es_ES!", "x" * 80])
def test_resolve_language_refuses_in_plain_words(text):
    with pytest.raises(ValueError) as exc:
        tr.resolve_language(text)
    assert "language" in str(exc.value).lower() or "choose" in str(exc.value).lower()


def test_language_name():
    assert tr.language_name("es") == "Spanish"
    assert tr.language_name("es-MX") == "Spanish (es-MX)"
    assert tr.language_name("gsw") == "gsw"


def test_gateway_json_is_what_the_server_accepts():
    text = tr.gateway_json("Spanish", context="Speakers: Dana, Añejo Corp")
    value = check_llm_gateway(text)
    assert value["model"] == tr.DEFAULT_MODEL == "gemini-2.5-flash-lite"
    assert 0 < value["max_tokens"] <= 1000
    prompt = value["messages"][0]["content"]
    assert "{{turn}}" in prompt and prompt.count("{{turn}}") == 1
    assert "Spanish" in prompt and "names" in prompt and "numbers" in prompt
    assert "preamble" in prompt
    assert "Dana, Añejo Corp" in prompt


def test_gateway_json_without_context_has_no_context_line():
    prompt = json.loads(tr.gateway_json("de", model="gpt-4.1-mini"))["messages"][0]["content"]
    assert "Context" not in prompt and "German" in prompt
    assert json.loads(tr.gateway_json("de", model="gpt-4.1-mini"))["model"] == "gpt-4.1-mini"


def test_context_is_one_bounded_line():
    assert tr.clean_context("Dana\nand\tLee\x00") == "Dana and Lee"
    with pytest.raises(ValueError, match="at most"):
        tr.clean_context("x" * (tr.CONTEXT_MAX_CHARS + 1))


def test_context_cannot_smuggle_the_template_variable_as_a_second_turn():
    prompt = tr.build_prompt("es", tr.clean_context("glossary {{turn}} {{{x}}}"))
    assert prompt.count("{{turn}}") == 1 and prompt.endswith("{{turn}}")


@pytest.mark.parametrize("name", ["has space", "x" * 101, "bad\x07"])
def test_bad_model_names_are_refused(name):
    with pytest.raises(ValueError, match="LLM model name"):
        tr.check_model(name)


def test_empty_model_means_the_default():
    assert tr.check_model("  ") == tr.DEFAULT_MODEL


def test_unavailable_reasons():
    assert tr.unavailable_reason("assemblyai", "v3", "us") is None
    assert "offline" in tr.unavailable_reason("local", "v3", "us")
    assert "v2" in tr.unavailable_reason("assemblyai", "v2", "us")
    assert "not yet available in the EU region" in tr.unavailable_reason("assemblyai", "v3", "eu")


def test_model_can_translate():
    assert tr.model_can_translate("universal-3-6-pro")
    assert not tr.model_can_translate("universal-streaming-english")


def test_unavailable_message_is_bounded_and_one_line():
    message = tr.unavailable_message("quota\nexceeded " + "x" * 500)
    assert "\n" not in message and len(message) < 260 and "captions continue" in message
    assert "no translation" in tr.unavailable_message(None)
