"""Untrusted text made safe to print on a terminal: control characters shown as escapes.

Owns the rule for what of a server's or model's text may reach the terminal byte for byte.
Text from the other side (agent messages, reasoning, command output, commands, paths,
reasons, error messages) can carry escape sequences — a carriage return and ``ESC [2K`` that
repaint a line, OSC 0 (window title), OSC 52 (clipboard), ``ESC [2J`` (clear screen) — and
bidi overrides that reorder what is shown. Every such character is replaced by a visible
escape (``\\x1b``, ``\\r``, ``\\u202e``), never dropped, so the reader sees that it was there.

* :func:`for_terminal` — free text (the default for everything the console prints): C0
  controls except newline and tab, DEL, C1 controls (U+0080 to U+009F), bidi embeddings,
  overrides, isolates and marks, the Unicode line and paragraph separators and lone
  surrogates are escaped; ``\\r\\n`` becomes ``\\n``. Other characters pass unchanged (zero-width
  joiners in emoji, soft hyphens: they move no cursor and reorder nothing). It works one
  character at a time with no state, so an escape sequence split across two streamed deltas
  is neutralised as well as a whole one.
* :func:`exact` — a value the user decides on (a command to approve, a path, a working
  directory): if it holds anything invisible or ambiguous (every Unicode control, format,
  separator, surrogate, private-use or unassigned character, newline and tab included, and
  spaces other than U+0020), the whole value is shown escaped with backslashes doubled, so
  the shown text maps back to exactly one string; otherwise it is shown as it is.

Hand-written on purpose: it is a character table and a regular expression over
:mod:`unicodedata`; no maintained library escapes (rather than strips) exactly this set.
This module must never drop a character silently or let one of the escaped characters
through.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["exact", "for_terminal", "is_exact_safe"]

# Bidi controls: ALM, LRM, RLM, embeddings/overrides/PDF, isolates/PDI.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Free text: C0 minus \t and \n, DEL and C1, bidi, line/paragraph separators, surrogates.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}
# What makes a value not exact: these general categories, and any space but U+0020.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _escape_match(match: re.Match[str]) -> str:
    return _escape(match.group())


def for_terminal(text: str) -> str:
    """``text`` with every character that could steer a terminal shown as a visible escape.

    Newlines and tabs stay; ``\\r\\n`` line ends become ``\\n``; everything in the module
    docstring's free-text set is escaped. Stateless, so it may be applied delta by delta.
    """
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_match, text.replace("\r\n", "\n"))


def _hidden(ch: str) -> bool:
    if ch == " ":
        return False
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


def is_exact_safe(text: str) -> bool:
    """Whether ``text`` shows on a terminal exactly as it is (nothing hidden or ambiguous)."""
    if text.isascii():  # the common case: printable ASCII passes, controls do not
        return all(" " <= ch <= "~" for ch in text)
    return not any(_hidden(ch) for ch in text)


def exact(text: str) -> str:
    """``text`` unchanged when :func:`is_exact_safe`; otherwise every hidden character and
    every backslash escaped, so the result reads back as exactly ``text``."""
    if is_exact_safe(text):
        return text
    return "".join(_escape(ch) if ch == "\\" or _hidden(ch) else ch for ch in text)
