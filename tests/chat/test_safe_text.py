"""``appserver.client.safe_text``: what of untrusted text may reach a terminal.

Examples of the attacks from the security review (a line repainted by ``\\r`` + ``ESC [2K``,
OSC 0 / OSC 52, clear screen, a bidi override) and property tests: whatever the input, and
however it is cut into streamed pieces, the output holds no control character but newline and
tab; ``exact`` reads back as exactly its input.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from appserver.client.safe_text import exact, for_terminal, is_exact_safe

ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=60)
# A sample heavy in the interesting characters, so the properties meet them often.
NASTY = st.sampled_from(
    [
        "\x1b",
        "\r",
        "\n",
        "\t",
        "\x07",
        "\x00",
        "\x7f",
        "\x9b",
        "\x85",
        "\u202e",
        "\u2066",
        "\u200b",
        "\u200d",
        "\u2028",
        "\u00a0",
        "\ud800",
        "\\",
        "[2J",
        "]52;c;",
        "x",
        "é",
    ]
)
MIXED = st.lists(st.one_of(NASTY, ANY_TEXT), max_size=12).map("".join)

BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def forbidden_on_terminal(ch: str) -> bool:
    cp = ord(ch)
    if ch in "\n\t":
        return False
    return (
        cp < 0x20
        or 0x7F <= cp <= 0x9F
        or ch in BIDI
        or ch in "\u2028\u2029"
        or 0xD800 <= cp <= 0xDFFF
    )


_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr\\])")
_NAMED = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(shown: str) -> str:
    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        return _NAMED[body] if body in _NAMED else chr(int(body[1:], 16))

    return _ESCAPE.sub(one, shown)


def test_the_reviewed_attacks_become_visible() -> None:
    spoof = "touch /tmp/x #\r\x1b[2K\x1b[1mls -la"
    assert for_terminal(spoof) == "touch /tmp/x #\\r\\x1b[2K\\x1b[1mls -la"
    assert for_terminal("\x1b]0;title\x07") == "\\x1b]0;title\\x07"
    assert for_terminal("\x1b]52;c;aGk=\x07") == "\\x1b]52;c;aGk=\\x07"
    assert for_terminal("\x1b[2J") == "\\x1b[2J"
    assert for_terminal("abc\u202edef") == "abc\\u202edef"
    assert for_terminal("\x9b31m") == "\\x9b31m"  # the one-byte C1 CSI
    # Lines and tabs stay; CRLF line ends are plain line ends.
    assert for_terminal("a\tb\r\nc\n") == "a\tb\nc\n"
    # Ordinary text, emoji with zero-width joiners, and backslashes pass unchanged.
    plain = "Hello, wörld — 👩\u200d💻 C:\\path \\x1b"
    assert for_terminal(plain) == plain


def test_exact_shows_a_command_as_it_will_run() -> None:
    assert exact("ls -la") == "ls -la"
    assert exact("grep 'a\\|b' f") == "grep 'a\\|b' f"  # nothing hidden: unchanged
    shown = exact("touch /tmp/x #\r\x1b[2K\x1b[1mls -la")
    assert shown == "touch /tmp/x #\\r\\x1b[2K\\x1b[1mls -la"
    # Once anything is escaped, a real backslash is doubled so the two cannot be confused.
    assert exact("echo a\\nb\nrm x") == "echo a\\\\nb\\nrm x"
    assert exact("a\u00a0b\u200bc") == "a\\xa0b\\u200bc"
    assert not is_exact_safe("x\ty") and is_exact_safe("café ok")


@given(MIXED)
def test_for_terminal_leaves_no_control_character(text: str) -> None:
    assert not any(forbidden_on_terminal(ch) for ch in for_terminal(text))


@given(st.lists(MIXED, max_size=6))
def test_streamed_pieces_are_as_safe_as_the_whole(pieces: list[str]) -> None:
    shown = "".join(for_terminal(p) for p in pieces)
    assert not any(forbidden_on_terminal(ch) for ch in shown)


@given(MIXED)
def test_for_terminal_changes_only_what_it_must(text: str) -> None:
    if not any(forbidden_on_terminal(ch) for ch in text):
        assert for_terminal(text) == text
    elif "\\" not in text:  # free text does not double backslashes; exact() does
        assert unescape(for_terminal(text)) == text.replace("\r\n", "\n")


@given(MIXED)
def test_exact_reads_back_as_its_input(text: str) -> None:
    shown = exact(text)
    assert is_exact_safe(shown)
    assert all(
        ch == " " or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")
        for ch in shown
    )
    assert (unescape(shown) if shown != text else shown) == text
