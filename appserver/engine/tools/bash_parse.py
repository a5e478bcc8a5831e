"""Reading a shell command the way bash will run it, or refusing to.

This module owns the one question every approval decision depends on: *which programs with
which arguments will this script run?* It answers only when it can prove the answer — the
script is a list of simple commands made of plain words (bare words, ``'...'``, ``"..."``
without expansions, and concatenations of those) joined by ``&&``, ``||``, ``;``, ``|`` or
line breaks — and returns ``None`` otherwise, which callers must read as "cannot tell: ask".

The grammar is tree-sitter-bash (the one Codex uses). A grammar is not bash, so its tree is
only trusted for the *boundaries* of commands, words and operators: every byte of the script
must then be accounted for — each word's text is decoded here by a strict reader of bash
quoting that refuses anything it does not fully understand (``$``, backquotes, ``$'...'``,
control characters, a backslash-newline inside a word), and every gap between the pieces
may hold only blanks, line breaks and comments in the places bash reads them as such (a
``#`` starts a comment only at the start of a word: ``echo a#; touch x`` is two commands).
Anything else — expansions, redirections, heredocs, subshells, ``&``, ``|&``, assignments,
functions, control flow, reserved words, parse errors — gives ``None``.

Words that bash would expand without running anything (globs ``* ? [``, braces, a tilde)
are returned with ``literal=False``; safety decisions treat them as unknown.

It must never say a script is plain when bash could run something the result does not show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "Command",
    "Script",
    "Word",
    "operands",
    "parse",
    "plain_commands",
    "shell_script_of",
    "simple_command_words",
]


@dataclass(frozen=True)
class Word:
    """One word of a command after quote removal. ``literal`` is False when bash would still
    expand it (glob, brace or tilde expansion): ``text`` is then not what the program sees."""

    text: str
    literal: bool = True


@dataclass(frozen=True)
class Command:
    """A simple command: its words (the program first) and its text in the script."""

    words: tuple[Word, ...]
    source: str

    def literal_words(self) -> list[str] | None:
        """The words as the program receives them, or None if any is still expanded."""
        if not all(w.literal for w in self.words):
            return None
        return [w.text for w in self.words]


@dataclass(frozen=True)
class Script:
    """Commands in order; ``operators[i]`` joins ``commands[i]`` and ``commands[i + 1]``
    (``&&``, ``||``, ``;`` or ``|``; a line break between commands is ``;``)."""

    commands: tuple[Command, ...]
    operators: tuple[str, ...]


_OPERATORS = frozenset({"&&", "||", ";", "|"})
# First words that bash reads as syntax, not as a program name.
_RESERVED = frozenset({
    "!", "{", "}", "[[", "]]", "case", "coproc", "do", "done", "elif", "else", "esac", "fi",
    "for", "function", "if", "in", "select", "then", "time", "until", "while",
})  # fmt: skip
# Characters that end an unquoted word (bash "metacharacters"), and those that start an
# expansion or quote we do not decode.
_METACHARS = frozenset(" \t\n|&;()<>")
_PATTERN_CHARS = frozenset("*?[]{}~")
# Inside a command: blanks and line continuations, at least one blank. Before an operator:
# the same, possibly empty.
_WORD_GAP = re.compile(r"(?:[ \t]|\\\n)*[ \t](?:[ \t]|\\\n)*")
_OPERATOR_GAP = re.compile(r"(?:[ \t]|\\\n)*")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_SCRIPT = 100_000  # longer scripts are not analysed (asked about)
_SHELLS = frozenset({"bash", "sh", "zsh", "dash"})
_SHELL_DIRS = frozenset({"/bin", "/usr/bin", "/usr/local/bin"})
_MAX_NESTING = 4


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    # Imported on first use: the grammar is only needed once a turn runs a command.
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


def _decode_word(raw: str) -> Word | None:
    """Bash's quote removal on one word's source text; None for anything not plain."""
    out: list[str] = []
    literal = True
    i, n = 0, len(raw)
    if n == 0 or raw[0] == "#":
        return None
    while i < n:
        c = raw[i]
        if c == "'":
            end = raw.find("'", i + 1)
            if end < 0:
                return None
            out.append(raw[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    return None
                ch = raw[i]
                if ch == '"':
                    i += 1
                    break
                if ch in "$`":
                    return None
                if ch == "\\":
                    if i + 1 >= n or raw[i + 1] == "\n":
                        return None
                    nxt = raw[i + 1]
                    if nxt in '$`"\\':
                        out.append(nxt)
                        i += 2
                        continue
                out.append(ch)
                i += 1
        elif c == "\\":
            if i + 1 >= n or raw[i + 1] == "\n":
                return None
            out.append(raw[i + 1])
            i += 2
        elif c in "$`" or c in _METACHARS or ord(c) < 0x20 or c == "\x7f":
            return None
        else:
            if c in _PATTERN_CHARS:
                literal = False
            out.append(c)
            i += 1
    return Word("".join(out), literal)


def _command(node: tree_sitter.Node, src: str) -> Command | None:
    words: list[Word] = []
    prev_end: int | None = None
    for child in node.children:
        kind = child.type
        if not child.is_named or kind not in (
            "command_name",
            "word",
            "string",
            "raw_string",
            "number",
            "concatenation",
        ):
            return None
        if kind == "command_name" and words:
            return None
        if prev_end is None:
            if child.start_byte != node.start_byte:
                return None
        elif not _WORD_GAP.fullmatch(src[prev_end : child.start_byte]):
            return None
        word = _decode_word(src[child.start_byte : child.end_byte])
        if word is None:
            return None
        words.append(word)
        prev_end = child.end_byte
    if not words or prev_end != node.end_byte or node.children[0].type != "command_name":
        return None
    name = words[0]
    # Reserved words are syntax, a `%` name is a job (`%1` is `fg %1`), `=` an assignment.
    if name.text in _RESERVED or "=" in name.text or name.text.startswith("%") or not name.text:
        return None
    return Command(tuple(words), src[node.start_byte : node.end_byte])


def _flatten(node: tree_sitter.Node, out: list[tree_sitter.Node]) -> bool:
    for child in node.children:
        if child.is_named:
            if child.type in ("list", "pipeline"):
                if not _flatten(child, out):
                    return False
            elif child.type in ("command", "comment"):
                out.append(child)
            else:
                return False
        elif child.type in _OPERATORS:
            out.append(child)
        else:
            return False
    return True


def _free_gap(
    src: str, start: int, end: int, comments: list[tree_sitter.Node], after_op: bool
) -> str | None:
    """Check a gap where blanks, line breaks and comments may stand (between commands, after
    an operator, at either end). Returns its text without comments, or None if not plain."""
    text: list[str] = []
    pos = start
    for comment in comments:
        c0, c1 = comment.start_byte, comment.end_byte
        # `#` starts a comment only where a word may start: after a blank or line break that
        # is not part of a word, after an operator, or at the start of the script.
        if c0 == start:
            if not (after_op or start == 0):
                return None
        elif src[c0 - 1 : c0] not in (" ", "\t", "\n"):
            return None
        if c1 < len(src) and src[c1 : c1 + 1] != "\n":
            return None
        if "\n" in src[c0:c1]:
            return None
        text.append(src[pos:c0])
        pos = c1
    text.append(src[pos:end])
    joined = "".join(text)
    if any(ch not in " \t\n" for ch in joined):
        return None
    return joined


@lru_cache(maxsize=64)
def parse(script: str) -> Script | None:
    """The commands of ``script`` if it is plain (see the module docstring), else None."""
    if not script or len(script) > _MAX_SCRIPT or "\0" in script:
        return None
    if script[0] in "-+":
        return None  # `bash -c -x...` would read the script as options
    if _SURROGATE.search(script):
        return None
    src = script
    # The grammar sees only ASCII: every other character becomes `x`. Bash's syntax is all
    # ASCII, so the structure is the same, and byte offsets in the masked text are character
    # offsets in the script. (tree-sitter-bash 0.25 crashes the process on some characters
    # above U+FFFF after a `{`.)
    tree = _parser().parse(_NON_ASCII.sub("x", script).encode("ascii"))
    root = tree.root_node
    if root.has_error or root.type != "program":
        return None
    pieces: list[tree_sitter.Node] = []
    if not _flatten(root, pieces):
        return None
    pieces.sort(key=lambda n: n.start_byte)
    commands: list[Command] = []
    operators: list[str] = []
    pending_comments: list[tree_sitter.Node] = []
    prev: tree_sitter.Node | None = None  # last command or operator
    for piece in pieces:
        if piece.type == "comment":
            pending_comments.append(piece)
            continue
        start = 0 if prev is None else prev.end_byte
        if piece.type == "command":
            if prev is not None and prev.type == "command":
                # Two commands with no operator: only a line break separates them.
                gap = _free_gap(src, start, piece.start_byte, pending_comments, after_op=False)
                if gap is None or "\n" not in gap:
                    return None
                operators.append(";")
            elif (
                _free_gap(src, start, piece.start_byte, pending_comments, after_op=prev is not None)
                is None
            ):
                return None
            command = _command(piece, src)
            if command is None:
                return None
            commands.append(command)
        else:  # an operator: only after a command, on the same line
            if prev is None or prev.type != "command" or pending_comments:
                return None
            if not _OPERATOR_GAP.fullmatch(src[start : piece.start_byte]):
                return None
            operators.append(piece.type)
        pending_comments = []
        prev = piece
    if prev is None:
        return None
    if (
        _free_gap(src, prev.end_byte, len(src), pending_comments, after_op=prev.type != "command")
        is None
    ):
        return None
    if prev.type != "command":
        if prev.type != ";":  # `ls;` is complete; `ls &&` is not
            return None
        operators.pop()
    if len(operators) != len(commands) - 1:
        return None
    return Script(tuple(commands), tuple(operators))


def shell_script_of(words: Sequence[str]) -> str | None:
    """The script of ``bash -c SCRIPT`` / ``bash -lc SCRIPT`` (also sh, zsh, dash, by bare
    name or from a system directory), else None. Extra operands after SCRIPT are refused."""
    if len(words) != 3 or words[1] not in ("-c", "-lc"):
        return None
    program = words[0]
    if program in _SHELLS or (
        os.path.dirname(program) in _SHELL_DIRS and os.path.basename(program) in _SHELLS
    ):
        return words[2]
    return None


def plain_commands(script: str) -> list[list[str]] | None:
    """Every command's literal words, or None unless the script is plain and no word is
    still expanded by bash."""
    parsed = parse(script)
    if parsed is None:
        return None
    out: list[list[str]] = []
    for command in parsed.commands:
        words = command.literal_words()
        if words is None:
            return None
        out.append(words)
    return out


def simple_command_words(command: str, _depth: int = 0) -> list[str] | None:
    """The words of ``command`` when it is exactly one plain command with literal words and
    no operator at all, else None. ``bash -lc SCRIPT`` is read through. These are the only
    commands an approved execpolicy prefix may match, and the words a client is offered as
    that prefix: anything else could hide a second command behind the approved words."""
    commands = plain_commands(command)
    if commands is None or len(commands) != 1:
        return None
    words = commands[0]
    inner = shell_script_of(words)
    if inner is not None:
        return None if _depth >= _MAX_NESTING else simple_command_words(inner, _depth + 1)
    return words


def operands(args: Sequence[str], takes_value: AbstractSet[str]) -> list[str]:
    """A command's positional arguments: flags skipped, and the value after each flag in
    ``takes_value``; everything after ``--`` (and a lone ``-``) is an operand."""
    out: list[str] = []
    skip = False
    only_operands = False
    for arg in args:
        if skip:
            skip = False
        elif only_operands or arg == "-" or not arg.startswith("-"):
            out.append(arg)
        elif arg == "--":
            only_operands = True
        elif arg in takes_value:
            skip = True
    return out
