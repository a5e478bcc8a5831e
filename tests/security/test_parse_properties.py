"""Property tests of the command reading, with real bash as the oracle.

Covers: (1) for scripts assembled from random shell fragments (quotes, ``#``, ``$``,
backquotes, operators, redirections, braces, line breaks, backslashes, CR), whenever the
parser returns literal commands, bash runs exactly those argvs and creates no file; (2)
compound commands made of safe commands with an attacker's fragment placed anywhere are
known safe only if everything bash runs is a safe command and nothing is written, and they
give prefix words (what an accepted execpolicy prefix matches) only when bash runs exactly
that one command; (3) the parser never raises on any text.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appserver.engine.tools import bash_parse
from appserver.engine.tools.command_safety import is_known_safe, is_safe_words
from tests.security import bash_oracle

pytestmark = pytest.mark.skipif(not bash_oracle.available(), reason="bash unavailable")

SETTINGS = settings(
    max_examples=int(os.environ.get("PROP_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Names are not bash builtins, so the oracle records every command.
FRAGMENTS = [
    "ab", "ba", "a", "x", " ", " ", " ", "\t", "#", ";", "&&", "||", "|", "&", "\n", "'",
    '"', "\\", "$", "`", "(", ")", "{", "}", "*", "~", "=", ">", "<", "\\\n", "'x y'",
    '"x y"', '"a\\"b"', "$'a'", "${x@P}", "#;", "-", "--pre=x", "\r", ",", "$(ab)", ">>", "%",
]  # fmt: skip


def _counter(argvs: list[list[str]]) -> Counter[tuple[str, ...]]:
    return Counter(tuple(a) for a in argvs)


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14).map("".join))
def test_literal_commands_are_what_bash_runs(script: str) -> None:
    parsed = bash_parse.parse(script)
    commands = bash_parse.plain_commands(script)
    if commands is None:
        return
    assert parsed is not None
    run = bash_oracle.run(script)
    assert run.created == [], script
    expected = _counter(commands)
    got = _counter(run.argvs)
    if "||" in parsed.operators:
        assert not got - expected, script  # `||` skips commands after a success
    else:
        assert got == expected, script


SAFE = [
    "ls", "ls -la", "cat notes", "wc -l notes", "grep -n a notes", "head -n 1 notes",
    "sort notes", "sed -n 1p notes", "rg foo", "cut -c1 notes", "tail notes",
]  # fmt: skip
ATTACK = [
    "touch pwned", "$(touch pwned)", "`touch pwned`", "> pwned", ">pwned", "#", "# ", " #",
    "&", "&&", "||", ";", "|", "\n", "${x@P}", "$'\\x24(touch pwned)'", "${x:=$'x'}", "=",
    "'", '"', "\\", "\\\n", "(", ")", "{", "}", "~", "*", "-e", "-i", "--pre=touch", "-z",
    "-o pwned", "\r", "$HOME", "!", "<(touch pwned)", "2>pwned", "#\ntouch pwned",
    "a#;touch pwned", "-exec", "-delete", "1e touch pwned",
]  # fmt: skip
SEPARATORS = [" && ", " || ", "; ", " | ", "\n", " ; "]


@st.composite
def compound(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SAFE), min_size=1, max_size=4))
    seps = [draw(st.sampled_from(SEPARATORS)) for _ in parts[1:]]
    script = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(script)))
        script = script[:at] + draw(st.sampled_from(ATTACK)) + script[at:]
    return script


@SETTINGS
@given(compound())
def test_compound_commands_are_safe_only_when_bash_runs_only_safe_commands(
    script: str,
) -> None:
    safe = is_known_safe(script, cwd=Path("/nonexistent-cwd"))
    prefix = bash_parse.simple_command_words(script)
    if not safe and prefix is None:
        return
    run = bash_oracle.run(script)
    assert run.created == [], script
    if safe:
        assert run.argvs, script
        assert all(is_safe_words(argv) for argv in run.argvs), (script, run.argvs)
    if prefix is not None:
        assert run.argvs == [prefix], (script, run.argvs)


@SETTINGS
@given(compound())
def test_an_attack_fragment_that_runs_is_never_known_safe(script: str) -> None:
    run = bash_oracle.run(script)
    if run.created or any(not is_safe_words(argv) for argv in run.argvs):
        assert not is_known_safe(script, cwd=Path("/nonexistent-cwd")), script
        assert (
            bash_parse.simple_command_words(script) is None
            or [bash_parse.simple_command_words(script)] == run.argvs
        ), script


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parser_never_raises(text: str) -> None:
    bash_parse.parse(text)
    bash_parse.simple_command_words(text)
    is_known_safe(text, cwd=Path("/nonexistent-cwd"))
