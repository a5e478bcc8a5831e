"""What a command runs, as the approval decisions read it: the bash parser, the known-safe
rules, the protected paths, the prefix words and the display's ``commandActions``.

Covers: the parser against each construct it must refuse (expansions, ``$'...'``,
redirections, heredocs, subshells, ``&``, ``|&``, assignments, functions, reserved words,
parse errors, a backslash-newline inside a word, CR) and the comment rule (``#`` starts a
comment only at the start of a word); words that bash still expands (globs, braces, tilde)
are not literal; the known-safe list (sed only ``-n <range>p FILE``, find without its
executing/writing actions, rg without --pre/-z, sort/date/uniq without their writing forms,
GNU abbreviations and grouped short options; git and unknown programs never); the server
home and ``/proc`` are never read without asking (relative paths, symlinks, ``cd`` before,
option values, recursive readers above the home); the execpolicy prefix words; and
``commandActions``. Replaces the shlex-based tests that lived in ``tests/tools``: ``git
status``/``log``/``diff``/``show``/``branch`` are no longer known safe (as in the reference:
a repository's own config runs programs from them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools import bash_parse
from appserver.engine.tools.command_actions import command_actions
from appserver.engine.tools.command_safety import is_known_safe


def words_of(script: str) -> list[list[str]] | None:
    return bash_parse.plain_commands(script)


# -- parser ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "commands", "operators"),
    [
        ("ls -1", [["ls", "-1"]], ()),
        (
            "ls && pwd; echo 'hi there' | wc -l",
            [["ls"], ["pwd"], ["echo", "hi there"], ["wc", "-l"]],
            ("&&", ";", "|"),
        ),
        ("echo \"a b\" 'c d' e\\ f", [["echo", "a b", "c d", "e f"]], ()),
        ('echo "/usr"\'/\'"local"/bin', [["echo", "/usr/local/bin"]], ()),
        ('echo "a\\"b\\\\c\\$d\\x"', [["echo", 'a"b\\c$d\\x']], ()),
        ('rg -n "foo" -g"*.py"', [["rg", "-n", "foo", "-g*.py"]], ()),
        ("echo 123 456", [["echo", "123", "456"]], ()),
        ('echo "line1\nline2"', [["echo", "line1\nline2"]], ()),
        ("ls\npwd", [["ls"], ["pwd"]], (";",)),
        ("ls;", [["ls"]], ()),
        ("ls &&\n  pwd", [["ls"], ["pwd"]], ("&&",)),
        ("ls \\\n  -la", [["ls", "-la"]], ()),
        # Comments: `#` starts one only where a word starts.
        ("echo a #b", [["echo", "a"]], ()),
        ("echo harmless#; touch x", [["echo", "harmless#"], ["touch", "x"]], (";",)),
        ("python3 -V#; touch x", [["python3", "-V#"], ["touch", "x"]], (";",)),
        ("echo 'a'#b", [["echo", "a#b"]], ()),
        ("echo a\\ #b; touch x", [["echo", "a #b"], ["touch", "x"]], (";",)),
        ("ls;#c", [["ls"]], ()),
        ("ls # c\npwd", [["ls"], ["pwd"]], (";",)),
        ("ls && # c\n pwd", [["ls"], ["pwd"]], ("&&",)),
        ("ls #x\\\nrm y", [["ls"], ["rm", "y"]], (";",)),
        ("# first\nls", [["ls"]], ()),
    ],
)
def test_plain_scripts(script: str, commands: list[list[str]], operators: tuple[str, ...]) -> None:
    parsed = bash_parse.parse(script)
    assert parsed is not None
    assert [c.literal_words() for c in parsed.commands] == commands
    assert parsed.operators == operators


@pytest.mark.parametrize(
    "script",
    [
        "",
        "   ",
        "# only a comment",
        "echo $HOME",
        "echo ${x:=$'\\x24(touch y)'} ${x@P}",
        'echo "hi $USER"',
        'echo "a$"',
        "echo $(pwd)",
        'echo "$(pwd)"',
        "echo `pwd`",
        "echo $'a'",
        'echo $"a"',
        "echo $((1+2))",
        "diff <(ls) <(ls)",
        "ls > out.txt",
        "ls 2>/dev/null",
        "cat < in",
        "cat <<EOF\nx\nEOF",
        "cat <<< hi",
        "(ls)",
        "ls || (pwd && echo hi)",
        "{ ls; }",
        "ls & pwd",
        "ls &",
        "ls |& wc",
        "FOO=bar ls",
        "f() { ls; }",
        "if true; then ls; fi",
        "for x in a; do ls; done",
        "[[ -f x ]]",
        "[ -f x ]",
        "! ls",
        "coproc ls",
        "time ls",
        "ls &&",
        "&& ls",
        "ls ;; pwd",
        "ls | | wc",
        "echo 'unterminated",
        'echo "unterminated',
        "ls\r",
        "ls\rpwd",
        "echo a\x00b",
        "echo e\\\nf",
        "'a=b' x",
        "%1",
        "ls\\",
    ],
)
def test_not_plain(script: str) -> None:
    assert words_of(script) is None


@pytest.mark.parametrize(
    "script", ["ls *.py", "cat ~/x", "cat ~", "rg --pr{e,}=x y", "ls [ab]", "ls ?"]
)
def test_expanded_words_are_not_literal(script: str) -> None:
    parsed = bash_parse.parse(script)
    assert parsed is not None  # plain structure, but a word is still expanded by bash
    assert words_of(script) is None


def test_shell_script_of() -> None:
    assert bash_parse.shell_script_of(["bash", "-lc", "ls"]) == "ls"
    assert bash_parse.shell_script_of(["/bin/sh", "-c", "ls"]) == "ls"
    assert bash_parse.shell_script_of(["zsh", "-lc", "ls"]) == "ls"
    assert bash_parse.shell_script_of(["./bash", "-c", "ls"]) is None
    assert bash_parse.shell_script_of(["bash", "-c", "ls", "x"]) is None
    assert bash_parse.shell_script_of(["bash", "-x", "ls"]) is None


# -- prefix words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("touch /tmp/a", ["touch", "/tmp/a"]),
        ("ls -la 'my dir'", ["ls", "-la", "my dir"]),
        ("bash -lc 'git status --short'", ["git", "status", "--short"]),
        ("echo 'a;b'", ["echo", "a;b"]),
        ("echo a#b", ["echo", "a#b"]),
        ("python3 -V # why", ["python3", "-V"]),
    ],
)
def test_simple_command_words(command: str, words: list[str]) -> None:
    assert bash_parse.simple_command_words(command) == words


@pytest.mark.parametrize(
    "command",
    [
        "touch a && rm -rf b",
        "touch a; rm b",
        "touch a | tee b",
        "touch a &",
        "touch a\nrm b",
        "touch a > b",
        "touch $(rm b)",
        "touch `rm b`",
        "touch $HOME",
        "touch ~/x",
        "touch *.py",
        "FOO=1 touch a",
        "(touch a)",
        "bash -lc 'touch a; rm b'",
        "echo 'unterminated",
        "python3 -V#; touch x",
        "echo harmless#; touch x",
        "",
    ],
)
def test_compound_commands_have_no_simple_words(command: str) -> None:
    assert bash_parse.simple_command_words(command) is None


# -- known safe ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "ls",
        "ls -la /tmp",
        "cat README.md",
        "pwd",
        "echo hello world",
        "echo a #b",
        "head -n 5 a.txt",
        "tail -n 5 a.txt",
        "wc -l a.txt",
        "grep -rn TODO .",
        "rg foo src",
        "rg -n 'fn main' -g '*.rs'",
        "find . -name '*.py'",
        "cat a.txt | grep foo | wc -l",
        "cd src && ls",
        "ls; pwd",
        "sed -n 1,10p file.txt",
        "sed -n '5p' a b",
        "sort -n a.txt",
        "sort -rn a.txt",
        "uniq -c a.txt",
        "date +%s",
        "date -u",
        "hostname",
        "printf '%s\\n' x",
        "bash -lc 'cat a | wc -l'",
        "bash -lc 'bash -c \"ls\"'",
    ],
)
def test_known_safe(command: str, tmp_path: Path) -> None:
    assert is_known_safe(command, cwd=tmp_path)


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /",
        "python3 -c 'print(42)'",
        "echo hi > file",
        "echo hi >> file",
        "cat a 2>/dev/null",
        "cat a | python3",
        "ls && rm x",
        "ls; rm x",
        "ls || rm x",
        "ls & rm x",
        "echo harmless#; touch x",
        "echo $(rm x)",
        "echo `rm x`",
        "echo ${x:=$'\\x24(touch y)'} ${x@P}",
        "ls\nrm x",
        "(ls)",
        "ls *.py",
        "cat ~/.appserver/auth.json",
        "ls {a,b}",
        "LD_PRELOAD=x.so ls",
        "xargs rm",
        "./ls",
        "/bin/ls",
        "",
        "cat 'unterminated",
        # git reads the repository's config, which can run programs (fsmonitor, pager, ...)
        "git status",
        "git log --oneline -5",
        "git diff HEAD~1",
        "git show HEAD",
        "git branch",
        "bash -lc 'git status'",
        "git push",
        "git -c core.pager=evil log",
        # sed: only `-n <range>p FILE...`
        "sed -n 1p -e '1e touch x' f",
        "sed -n 1p --expression=1etouch f",
        "sed -n 1p -i f",
        "sed -i s/a/b/ f",
        "sed -n '1e touch x' f",
        "sed s/a/b/e f",
        "sed -n xp f",
        "sed -n 1,2,3p f",
        "sed 1p f",
        # find: actions that execute, delete or write
        "find . -name x -delete",
        "find . -exec rm {} ;",
        "find . -execdir rm {} +",
        "find . -ok rm {} ;",
        "find . -okdir rm {} ;",
        "find . -fprint out",
        "find . -fprint0 out",
        "find . -fprintf out %p",
        "find . -fls out",
        # rg: programs it runs
        "rg --pre ./evil foo",
        "rg --pre=./evil foo",
        "rg --hostname-bin=./evil foo",
        "rg -z foo",
        "rg -nz foo",
        "rg --search-zip foo",
        # sort/uniq/date: writing forms, GNU abbreviations, grouped options
        "sort -o out in",
        "sort -rooout in",
        "sort --output=out in",
        "sort --out=out in",
        "sort --compress-program=evil in",
        "sort --comp=evil in",
        "uniq in out",
        "date -s 2020-01-01",
        "date -us 2020-01-01",
        "date --set=2020-01-01",
        "date --se=2020-01-01",
        "hostname evil",
        "printf -v PATH /tmp/evil",
        "cd",
        "cd -",
        # dropped from the list: they can run commands or write
        "less README.md",
        "tree -o out",
        "file -C -m x",
        "printenv",
        "xargs ls",
        "env ls",
        "bash -c 'ls' x",
    ],
)
def test_not_known_safe(command: str, tmp_path: Path) -> None:
    assert not is_known_safe(command, cwd=tmp_path)


def test_huge_scripts_are_asked_about(tmp_path: Path) -> None:
    assert is_known_safe("echo " + "x " * 1000, cwd=tmp_path)
    assert not is_known_safe("echo " + "x " * 3000, cwd=tmp_path)


def test_known_safe_argv_form(tmp_path: Path) -> None:
    assert is_known_safe(["ls", "-la"], cwd=tmp_path)
    assert is_known_safe(["ls", ">", "x"], cwd=tmp_path)  # an argv is literal: '>' is a name
    assert is_known_safe(["bash", "-lc", "cat a | wc -l"], cwd=tmp_path)
    assert not is_known_safe(["bash", "-lc", "cat a > b"], cwd=tmp_path)
    assert not is_known_safe(["python3", "x.py"], cwd=tmp_path)
    assert not is_known_safe([], cwd=tmp_path)


# -- protected paths -------------------------------------------------------------------------


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    home = tmp_path / "srv" / ".appserver"
    home.mkdir(parents=True)
    (home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-secret"}')
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "link").symlink_to(home / "auth.json")
    (tmp_path / "proj" / "homelink").symlink_to(home)
    (tmp_path / "elsewhere" / "a" / "deep").mkdir(parents=True)
    (tmp_path / "proj" / "deeplink").symlink_to(tmp_path / "elsewhere" / "a" / "deep")
    return home


@pytest.mark.parametrize(
    "command",
    [
        "cat {home}/auth.json",
        "cat ../srv/.appserver/auth.json",
        "cat link",
        "cat homelink/auth.json",
        "ls homelink",
        "head -c 100 {home}/auth.json",
        "grep -f{home}/auth.json x",
        "grep --file={home}/auth.json x",
        "wc --files0-from={home}/auth.json",
        "sed -n 1p {home}/auth.json",
        "cd ../srv && cat .appserver/auth.json",
        "cd {home} && cat auth.json",
        # bash's cd is logical: `deeplink/..` is proj again, not the link target's parent
        "cd deeplink/.. && cd ../srv/.appserver && ls",
        "cd deeplink/.. && cat ../srv/.appserver/auth.json",
        "cd /tmp; cd {home} && ls",
        "grep -r sk- ..",
        "grep -r sk- /",
        "rg sk- /",
        "diff -r ../srv /dev/null",
        "bash -lc 'cat {home}/auth.json'",
        "cat {home}/sessions/x.jsonl",
        "cat /proc/1/environ",
        "cat /proc/self/cwd/../srv/.appserver/auth.json",
        "cat {home}/../.appserver/auth.json",
        "cat //{home_tail}/auth.json",
    ],
)
def test_reading_the_home_is_never_known_safe(command: str, server_home: Path) -> None:
    cwd = server_home.parent.parent / "proj"
    text = command.format(home=server_home, home_tail=str(server_home).lstrip("/"))
    assert not is_known_safe(text, cwd=cwd, protected=[server_home])


def test_commands_run_inside_the_home_are_not_known_safe(server_home: Path) -> None:
    assert not is_known_safe("ls", cwd=server_home, protected=[server_home])
    assert not is_known_safe("echo hi", cwd=server_home, protected=[server_home])
    assert not is_known_safe("cd / && ls", cwd=server_home, protected=[server_home])
    assert not is_known_safe("cat x", cwd=server_home, protected=[server_home])
    assert not is_known_safe("rg foo", cwd=server_home.parent, protected=[server_home])


def test_reading_elsewhere_stays_known_safe(server_home: Path) -> None:
    cwd = server_home.parent.parent / "proj"
    for command in ["cat src/a.py", "ls src", "grep -rn TODO .", "rg foo src", "cd src && ls"]:
        assert is_known_safe(command, cwd=cwd, protected=[server_home]), command


def test_cdpath_makes_a_bare_cd_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert is_known_safe("cd src && ls", cwd=tmp_path)
    monkeypatch.setitem(os.environ, "CDPATH", "/somewhere")
    assert not is_known_safe("cd src && ls", cwd=tmp_path)
    assert is_known_safe("cd ./src && ls", cwd=tmp_path)


# -- commandActions (display) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("cat README.md", [{"type": "read", "name": "README.md", "path": "README.md"}]),
        ("head -n 20 src/a.py", [{"type": "read", "name": "a.py", "path": "src/a.py"}]),
        ("tail -5 /var/log/x.log", [{"type": "read", "name": "x.log", "path": "/var/log/x.log"}]),
        ("less docs/guide.md", [{"type": "read", "name": "guide.md", "path": "docs/guide.md"}]),
        ("sed -n 1,20p f.py", [{"type": "read", "name": "f.py", "path": "f.py"}]),
        ("ls", [{"type": "listFiles", "path": None}]),
        ("ls -la src", [{"type": "listFiles", "path": "src"}]),
        ("ls *.py", [{"type": "listFiles", "path": "*.py"}]),
        ("rg --files src", [{"type": "listFiles", "path": "src"}]),
        ("grep -rn TODO src", [{"type": "search", "query": "TODO", "path": "src"}]),
        ("rg -e 'fn main' -g '*.rs'", [{"type": "search", "query": "fn main", "path": None}]),
        (
            "rg foo | head -n 5",
            [{"type": "search", "query": "foo", "path": None, "command": "rg foo"}],
        ),
        ("find . -name '*.py'", [{"type": "search", "query": "*.py", "path": "."}]),
        (
            "cd src && cat a.py",
            [{"type": "read", "name": "a.py", "path": "a.py", "command": "cat a.py"}],
        ),
        ("bash -lc 'ls docs'", [{"type": "listFiles", "path": "docs", "command": "ls docs"}]),
    ],
)
def test_command_actions(command: str, expected: list[dict[str, Any]]) -> None:
    actions = command_actions(command)
    assert len(actions) == len(expected)
    for got, want in zip(actions, expected, strict=True):
        want = {"command": command, **want}
        assert got == want


@pytest.mark.parametrize(
    "command",
    [
        "python3 -c 'print(42)'",
        "cat a > b",
        "rm -rf x",
        "cat a.txt && rm a.txt",
        "cat 'unterminated",
        "",
        "cat a b",
        "FOO=1 cat a",
        "echo hi | python3",
        "cat $HOME/x",
        "echo harmless#; cat x",
    ],
)
def test_command_actions_unknown(command: str) -> None:
    assert command_actions(command) == [{"type": "unknown", "command": command}]


def test_command_actions_multiple_parts() -> None:
    actions = command_actions("ls src; cat src/a.py")
    assert [a["type"] for a in actions] == ["listFiles", "read"]
    assert actions[0]["command"] == "ls src" and actions[1]["command"] == "cat src/a.py"


def test_non_ascii_words() -> None:
    assert words_of("cat héllo.txt '日本' \"😀\"") == [["cat", "héllo.txt", "日本", "😀"]]
    assert words_of("echo a\u00a0b") == [["echo", "a\u00a0b"]]  # not a blank for bash
    assert words_of("echo \ud800") is None


def test_characters_that_crash_the_grammar_are_never_given_to_it() -> None:
    # tree-sitter-bash 0.25 segfaults on `{` followed by some characters above U+FFFF; the
    # parser masks non-ASCII before parsing, so this returns (a crash would kill the test).
    for text in ["{\U00100000", "echo {\U00108712", "x{\U000e0000}", "~\x97b:{\U00108712\x08h"]:
        bash_parse.parse(text)
        command_actions(text)
