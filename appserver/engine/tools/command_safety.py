"""Which commands are "known safe": they may run without asking under ``untrusted``.

A command is known safe only when :mod:`bash_parse` proves it is a list of plain commands
(``&&``, ``||``, ``;``, ``|``) whose words are all literal, and every one of those commands
is a read-only program called with arguments that cannot execute anything, write anything
or read a protected path (the server's home: ``auth.json``, rollouts, the state database;
and ``/proc``, where other processes' environments live). The rules per program follow the
reference's list (Codex ``is_safe_command.rs``), made stricter where an argument can still
write or run something (GNU long options may be abbreviated; short options may be grouped).

``git`` is not on the list (as in the reference): a repository's own configuration
(``core.fsmonitor``, ``core.pager``, ``diff.external``, textconv drivers) runs programs on
``git status``/``log``/``diff``, and that configuration is a file the agent can write.

It must never answer "safe" for anything it cannot prove; when unsure, it answers False and
the caller asks the user.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from appserver.engine.tools import bash_parse

__all__ = ["is_known_safe", "is_safe_words"]

_MAX_NESTING = 4
_MAX_WORDS = 2000
_MAX_CWDS = 16  # where a chain of `cd`s may have led (logical and physical readings)
# Paths no known-safe command may name, whatever the server's home: other processes'
# environments (/proc/<pid>/environ), and /proc/self/cwd-style links that resolve
# differently for the command than for this check.
_ALWAYS_PROTECTED = (Path("/proc"),)

_SED_PRINT = re.compile(r"[0-9]+(,[0-9]+)?p")
_FIND_UNSAFE = frozenset(
    {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf"}
)
# Programs that never open their arguments as files: no path check.
_NO_FILE_ARGS = frozenset({
    "basename", "dirname", "echo", "false", "hostname", "id", "printf", "pwd", "seq", "true",
    "type", "uname", "which", "whoami",
})  # fmt: skip
# Programs that read recursively: naming a directory above a protected path reads it too.
_RECURSIVE_READERS = frozenset({"grep", "egrep", "fgrep", "rg", "diff"})


def _long_option_matches(arg: str, dangerous: Iterable[str]) -> bool:
    """Whether ``arg`` is one of the ``dangerous`` long options or, since getopt_long accepts
    any unambiguous prefix, an abbreviation of one (``--out=x`` is ``--output=x``)."""
    if not arg.startswith("--") or arg == "--":
        return False
    name = arg[2:].split("=", 1)[0]
    return any(option.startswith(name) for option in dangerous) and bool(name)


def _short_cluster_has(arg: str, letters: str) -> bool:
    """Whether a grouped short-option word (``-rno``) contains any of ``letters``."""
    return arg.startswith("-") and not arg.startswith("--") and any(c in arg[1:] for c in letters)


def _any_arg(args: Sequence[str]) -> bool:
    return True


def _sed(args: Sequence[str]) -> bool:
    # Only `sed -n <N>p|<N,M>p [FILE...]`: every other script or option can write (w, -i)
    # or execute (GNU sed's `e` command and `s///e`).
    return (
        len(args) >= 2
        and args[0] == "-n"
        and bool(_SED_PRINT.fullmatch(args[1]))
        and not any(a.startswith("-") for a in args[2:])
    )


def _find(args: Sequence[str]) -> bool:
    return not any(a in _FIND_UNSAFE for a in args)


def _rg(args: Sequence[str]) -> bool:
    # --pre runs a program on every file, --hostname-bin runs one, -z/--search-zip run
    # decompressors (also inside a group such as -nz).
    for arg in args:
        if _short_cluster_has(arg, "z"):
            return False
        if arg.startswith("--") and arg[2:].split("=", 1)[0] in (
            "pre",
            "pre-glob",
            "hostname-bin",
            "search-zip",
        ):
            return False
    return True


def _sort(args: Sequence[str]) -> bool:
    # -o/--output writes; --compress-program runs a program.
    return not any(
        _short_cluster_has(a, "o") or _long_option_matches(a, ("output", "compress-program"))
        for a in args
    )


def _uniq(args: Sequence[str]) -> bool:
    # A second operand is the output file.
    # (A value given to a long option as the next word counts as an operand: cautious.)
    return len(bash_parse.operands(args, frozenset({"-f", "-s", "-w"}))) <= 1


def _date(args: Sequence[str]) -> bool:
    # -s/--set sets the clock (the server may run as root).
    return not any(_short_cluster_has(a, "s") or _long_option_matches(a, ("set",)) for a in args)


def _cd(args: Sequence[str]) -> bool:
    return len(args) == 1 and not args[0].startswith("-")


def _no_args(args: Sequence[str]) -> bool:
    return not args


def _printf(args: Sequence[str]) -> bool:
    # `printf -v NAME` assigns a shell variable (PATH, say) for the commands after it.
    return bool(args) and not args[0].startswith("-")


# Programs that only read or print, whatever their arguments.
_READ_ONLY = (
    "basename", "cat", "cmp", "cut", "df", "diff", "dirname", "du", "echo", "egrep", "false",
    "fgrep", "grep", "head", "id", "ls", "nl", "paste", "pwd", "readlink", "realpath", "rev",
    "seq", "stat", "tac", "tail", "tr", "true", "type", "uname", "wc", "which", "whoami",
)  # fmt: skip

_RULES: dict[str, Callable[[Sequence[str]], bool]] = {
    **dict.fromkeys(_READ_ONLY, _any_arg),
    "cd": _cd,
    "date": _date,
    "find": _find,
    "hostname": _no_args,
    "printf": _printf,
    "rg": _rg,
    "sed": _sed,
    "sort": _sort,
    "uniq": _uniq,
}


def is_safe_words(words: Sequence[str]) -> bool:
    """Whether one command's literal argv only reads (the program and argument rules only;
    :func:`is_known_safe` also checks paths)."""
    if not words:
        return False
    rule = _RULES.get(words[0])
    return rule is not None and rule(words[1:])


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _path_candidates(word: str) -> set[str]:
    """Strings in ``word`` that the program may open as a path: the word, a value after
    ``=`` or ``:``, and what follows a short option's letters (``-f/path``)."""
    out = {word}
    for sep in "=:":
        if sep in word:
            out.update(word.split(sep)[1:])
    if word.startswith("-") and not word.startswith("--"):
        out.update(word[i:] for i in range(2, min(len(word), 16)))
    return {c for c in out if c}


def _names_protected(
    words: Sequence[str], cwds: Iterable[str], protected: Sequence[str], recursive: bool
) -> bool:
    """Whether a word of the command (resolved against each of ``cwds``, as written and
    through symlinks) or the directory itself is inside a protected path; for a recursive
    reader, also a directory above one."""
    candidates: set[str] = {"."}
    for word in words[1:]:
        candidates |= _path_candidates(word)
    for candidate in candidates:
        joined = [os.path.join(cwd, candidate) for cwd in cwds]
        for spelled in {*map(os.path.abspath, joined), *map(os.path.realpath, joined)}:
            if _inside(spelled, protected):
                return True
            if recursive and any(_inside(root, [spelled]) for root in protected):
                return True
    return False


def _protected_roots(protected: Iterable[Path]) -> list[str]:
    roots: set[str] = set()
    for path in (*protected, *_ALWAYS_PROTECTED):
        roots.add(os.path.abspath(path))
        roots.add(os.path.realpath(path))
    return sorted(roots)


def _script_safe(script: str, cwds: frozenset[str], protected: Sequence[str], depth: int) -> bool:
    commands = bash_parse.plain_commands(script)
    if not commands or sum(map(len, commands)) > _MAX_WORDS:
        return False  # (each word costs a few path lookups: a huge script is asked about)
    here = cwds
    for words in commands:
        if not _words_safe(words, here, protected, depth):
            return False
        if words[0] == "cd":
            # Later commands run there (in a pipeline cd runs in a subshell; assuming it
            # moves is the cautious reading). CDPATH could send a bare name elsewhere.
            target = words[1]
            if os.environ.get("CDPATH") and not target.startswith(("/", ".")):
                return False
            # Bash's cd is logical (`link/..` is where the link is); the kernel's is physical.
            moved = [os.path.join(c, target) for c in here]
            here = frozenset({*map(os.path.abspath, moved), *map(os.path.realpath, moved)})
            if len(here) > _MAX_CWDS:
                return False
    return True


def _words_safe(
    words: Sequence[str], cwds: frozenset[str], protected: Sequence[str], depth: int
) -> bool:
    inner = bash_parse.shell_script_of(words)
    if inner is not None:
        return depth < _MAX_NESTING and _script_safe(inner, cwds, protected, depth + 1)
    if not is_safe_words(words):
        return False
    if words[0] in _NO_FILE_ARGS:
        return not _names_protected(words[:1], cwds, protected, recursive=False)  # cwd only
    return not _names_protected(words, cwds, protected, words[0] in _RECURSIVE_READERS)


def is_known_safe(
    command: str | Sequence[str],
    *,
    cwd: Path | str | None = None,
    protected: Iterable[Path] = (),
) -> bool:
    """Whether ``command`` only reads, so ``untrusted`` approval may run it without asking.

    ``command`` is a shell script (what ``shell_command`` runs through ``bash -c``) or an
    argv taken literally (except ``bash -c SCRIPT``, whose script is read). ``cwd`` is where
    it runs (relative paths are resolved against it; default: ours). No word may name a path
    inside ``protected`` (the server's home) or ``/proc``. Never raises.
    """
    try:
        start = os.path.abspath(cwd if cwd is not None else os.getcwd())
        here = frozenset({start, os.path.realpath(start)})
        roots = _protected_roots(protected)
        if isinstance(command, str):
            return _script_safe(command, here, roots, 0)
        return _words_safe(list(command), here, roots, 0)
    except Exception:  # a safety check that fails says "ask"
        return False
