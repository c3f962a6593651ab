"""Plain http/ws only for this computer unless opted in; no user:password@ anywhere."""

from __future__ import annotations

import pytest

from app.cli import build_parser
from app.core.session_config import SessionConfig
from app.core.credentials import Secret
from app.core.run_plan import PlanError, RunValues, overrides_from_args, plan_run, session_config
from app.core.settings import DictStore, Settings
from app.core.status import StatusModel
from app.core.streaming import urls
from app.core.streaming.auth import BrokerAuth


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "ws://localhost:9", "http://[::1]:80",
                                 "http://127.8.9.10", "https://stt.example.org",
                                 "wss://stt.example.org/aai"])
def test_loopback_or_encrypted_urls_are_fine(url):
    urls.check_url(url, "server URL")


@pytest.mark.parametrize("url", ["http://stt.example.org", "ws://10.0.0.5:8080",
                                 "http://127.0.0.1.example.org", "http://localhost-not.example"])
def test_plain_text_to_another_host_needs_the_opt_in(url):
    with pytest.raises(ValueError, match="unencrypted") as info:
        urls.check_url(url, "server URL")
    assert "--allow-insecure" in str(info.value)
    urls.check_url(url, "server URL", allow_insecure=True)


@pytest.mark.parametrize("url", ["https://alice:hunter2@stt.example.org",
                                 "http://alice:hunter2@127.0.0.1:9", "wss://:hunter2@h.example"])
def test_userinfo_is_refused_without_repeating_the_password(url):
    with pytest.raises(ValueError, match="user name or password") as info:
        urls.check_url(url, "server URL", allow_insecure=True)
    assert "hunter2" not in str(info.value) and "alice" not in str(info.value)


def test_session_config_validation_applies_the_policy_to_server_and_broker():
    with pytest.raises(ValueError, match="unencrypted"):
        SessionConfig(server_url="http://stt.example.org").validate()
    with pytest.raises(ValueError, match="token-broker URL"):
        SessionConfig(auth_mode="broker", token_url="http://broker.example.org/t").validate()
    with pytest.raises(ValueError, match="user name or password"):
        SessionConfig(auth_mode="broker", token_url="https://u:p@broker.example.org/t").validate()
    SessionConfig(server_url="http://stt.example.org", allow_insecure=True).validate()


def test_broker_auth_checks_the_url_even_when_config_was_not_validated():
    from app.core.engine import SessionError  # noqa: F401  (a ValueError, mapped by the session)
    with pytest.raises(ValueError, match="unencrypted"):
        BrokerAuth("http://broker.example.org/t").credentials(SessionConfig(), 1)


def test_ws_url_building_refuses_plain_text_to_a_remote_host():
    with pytest.raises(ValueError, match="unencrypted"):
        urls.ws_url(SessionConfig(server_url="ws://stt.example.org"))
    assert urls.ws_url(SessionConfig(server_url="ws://stt.example.org", allow_insecure=True)) \
        .startswith("ws://stt.example.org/v3/ws?")


def test_redaction_drops_userinfo_and_tokens():
    shown = urls.redact_url("wss://bob:s3cret@h.example/v3/ws?token=abc&sample_rate=16000")
    assert "s3cret" not in shown and "bob" not in shown and "abc" not in shown
    assert shown.startswith("wss://h.example/v3/ws?")
    assert urls.redact_url("http://u:p@h.example/x") == "http://h.example/x"


def test_setting_and_warning_when_opted_in():
    config = session_config(Settings(DictStore({"connection/server_url": "http://stt.example.org:81",
                                                "connection/allow_insecure": True})).get,
                            "assemblyai")
    assert config.allow_insecure
    warning = urls.insecure_warning(config)
    assert "unencrypted" in warning and "stt.example.org:81" in warning
    assert "stt.example.org" in urls.insecure_status(config)
    assert urls.insecure_warning(SessionConfig(server_url="http://127.0.0.1:9")) is None
    model = StatusModel()
    model.starting(["mic"])
    assert "unencrypted" in model.set_warning(urls.insecure_status(config)).summary()


def plan(*argv, store=None):
    args = build_parser().parse_args(["--headless", "--source", "file:x.wav", *argv])
    return plan_run(RunValues(Settings(DictStore(store or {})), overrides_from_args(args)),
                    Secret("k"))


def test_cli_refuses_plain_text_server_unless_allow_insecure():
    with pytest.raises(PlanError, match="--allow-insecure"):
        plan("--server", "http://stt.example.org")
    with pytest.raises(PlanError, match="unencrypted"):
        plan(store={"connection/server_url": "ws://stt.example.org"})
    assert plan("--server", "http://stt.example.org", "--allow-insecure").config.allow_insecure
    assert plan(store={"connection/server_url": "http://stt.example.org",
                       "connection/allow_insecure": True}).config.allow_insecure
    with pytest.raises(PlanError, match="user name or password"):
        plan("--server", "https://a:b@stt.example.org")
