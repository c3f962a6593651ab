"""The API key page's words for a failed "Test connection"."""

import pytest

from app.core.events import Recovery, StreamError
from app.core.streaming.check import refusal_message
from app.core.streaming.close_codes import from_http_status

REFUSED = from_http_status(401, "The AssemblyAI token service")


@pytest.mark.parametrize("origin, words", [
    ("typed", "refused this key (HTTP 401)"),
    ("stored", "refused the key stored in the keyring (HTTP 401)"),
    ("session", "refused the key used for this session (HTTP 401)"),
    ("environment", "refused the key in ASSEMBLYAI_API_KEY (HTTP 401)"),
])
def test_a_refused_key_is_named_for_where_it_came_from(origin, words):
    text = refusal_message(REFUSED, origin)
    assert words in text and "token service" not in text and "in Settings" not in text


def test_a_403_handshake_refusal_is_a_refusal_too():
    assert "refused this key (HTTP 403)" in refusal_message(from_http_status(403, "AssemblyAI"),
                                                            "typed")


@pytest.mark.parametrize("error", [
    StreamError(None, "Could not reach AssemblyAI (timed out); retrying.", Recovery.RECONNECT),
    from_http_status(402, "AssemblyAI"),
    from_http_status(404, "AssemblyAI"),
])
def test_other_failures_keep_their_own_words(error):
    assert refusal_message(error, "typed") == error.message


def test_without_a_known_origin_the_message_is_kept():
    assert refusal_message(REFUSED, None) == REFUSED.message
