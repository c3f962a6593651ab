"""Vocabulary parsing, cleaning and the per-protocol limits (pure, no Qt)."""

import pytest

from app.core import vocabulary as v


def test_one_term_per_line_and_commas_split():
    assert v.parse_text("AssemblyAI\nKubernetes, gRPC ,  PySide6\n") == [
        "AssemblyAI", "Kubernetes", "gRPC", "PySide6"]


def test_blanks_removed_and_inner_whitespace_collapsed():
    assert v.parse_text("\n\n  foo   bar \n\t\n,,  \r\nbaz") == ["foo bar", "baz"]


def test_duplicates_case_insensitive_keep_first_spelling():
    assert v.parse_text("AssemblyAI\nassemblyai\nASSEMBLYAI\nStraße\nSTRASSE") == [
        "AssemblyAI", "Straße"]  # casefold: "straße" == "strasse"


def test_nfc_normalisation_counts_accented_letter_once():
    decomposed = "Zoe\u0308"            # e + combining diaeresis
    assert v.parse_text(decomposed) == ["Zoë"]
    assert v.check(v.parse_text(decomposed), "v2").used == 3
    assert v.parse_text("Zoë\nZoe\u0308") == ["Zoë"]  # same term after normalisation


def test_v2_counts_sum_of_term_lengths():
    terms = ["ab", "cde"]
    result = v.check(terms, "v2")
    assert result.used == 5 and result.ok
    assert result.counter == "5 / 2500 characters"


@pytest.mark.parametrize("total, ok", [(2499, True), (2500, True), (2501, False)])
def test_v2_boundary(total, ok):
    terms = [f"t{i:03d}" + "x" * 45 for i in range(50)]   # 50 terms of 49 chars = 2450
    terms.append("y" * (total - 2450))
    result = v.check(v.clean_terms(terms), "v2")
    assert result.used == total
    assert result.ok is ok
    assert ("over the limit" in result.reason) is (not ok)
    assert result.counter == f"{total} / 2500 characters"


def test_v2_non_ascii_counted_as_characters_not_bytes():
    terms = ["日本語" * 833 + "é"]          # 2500 characters, 7498 UTF-8 bytes
    assert v.check(terms, "v2").ok
    assert not v.check([terms[0] + "ü"], "v2").ok


@pytest.mark.parametrize("count, ok", [(100, True), (101, False)])
def test_v3_term_count_boundary(count, ok):
    terms = [f"term {i}" for i in range(count)]
    result = v.check(terms, "v3")
    assert result.ok is ok
    assert result.counter.startswith(f"{count} / 100 terms")
    assert ("at most 100 terms" in result.reason) is (not ok)


def test_v3_term_length_boundary_50_passes_51_fails():
    assert v.check(["a" * 50], "v3").ok
    result = v.check(["short", "b" * 51], "v3")
    assert not result.ok
    assert "51 characters" in result.reason and "at most 50" in result.reason
    assert "longest 51 / 50 characters" in result.counter


def test_v3_non_ascii_term_length_in_characters():
    assert v.check(["ü" * 50], "v3").ok
    assert not v.check(["ü" * 51], "v3").ok


def test_empty_list_is_fine_for_both():
    assert v.check([], "v2").ok and v.check([], "v3").ok
    assert v.check([], "v3").counter == "0 / 100 terms, longest 0 / 50 characters"


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(ValueError, match="v3 or v2"):
        v.check([], "v4")


def test_format_round_trip():
    terms = ["foo", "bar baz", "Zoë"]
    assert v.parse_text(v.format_terms(terms)) == terms


@pytest.mark.parametrize("protocol, terms", [
    ("v2", [f"t{i:03d}" + "x" * 45 for i in range(50)] + ["y" * 50]),     # exactly 2500
    ("v2", [f"t{i:03d}" + "x" * 45 for i in range(50)] + ["y" * 51]),     # 2501
    ("v2", ["Zoë", "naïve café", "日本語"]),
    ("v3", [f"term {i}" for i in range(100)]),
    ("v3", [f"term {i}" for i in range(101)]),
    ("v3", ["a" * 50, "b" * 51]),
])
def test_session_client_agrees_with_the_editor_limits(protocol, terms):
    """What the settings dialog accepts, the streaming client must send (and vice versa)."""
    from app.core.session_config import SessionConfig
    from app.core.streaming import urls
    editor_ok = v.check(v.clean_terms(terms), protocol).ok
    try:
        urls.ws_url(SessionConfig(protocol=protocol, chunk_ms=100, vocabulary=tuple(terms)))
        client_ok = True
    except ValueError:
        client_ok = False
    assert client_ok == editor_ok
