"""``search_snippet``: the text ``thread/search`` shows around a match (pure function)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appserver.server.views import SNIPPET_CONTEXT, search_snippet


def test_match_in_the_name_wins_over_the_preview() -> None:
    assert search_snippet("fix", "Fix the build", "please fix it") == "Fix the build"


def test_long_text_is_cut_around_the_match() -> None:
    text = "a" * 200 + "NEEDLE" + "b" * 200
    snippet = search_snippet("needle", None, text)
    assert snippet == "…" + "a" * SNIPPET_CONTEXT + "NEEDLE" + "b" * SNIPPET_CONTEXT + "…"


def test_no_match_gives_the_start_of_the_first_text() -> None:
    assert search_snippet("zzz", None, "x" * 500) == "x" * (2 * SNIPPET_CONTEXT)
    assert search_snippet("", None, None) == ""


@given(st.text(max_size=80), st.text(min_size=1, max_size=10), st.text(max_size=80))
def test_a_present_term_is_always_in_the_snippet(before: str, term: str, after: str) -> None:
    snippet = search_snippet(term, None, before + term + after)
    assert term.lower() in snippet.lower() or term.casefold() != term.lower()
