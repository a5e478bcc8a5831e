"""Codex ``apply_patch`` format: parsing, planning, applying and diffing.

This module owns the patch envelope grammar (``*** Begin Patch`` ... ``*** End Patch``), the
algorithm that locates update hunks in existing files, the per-file unified diffs shown to
clients (v2 ``FileUpdateChange``) and the turn-level aggregated diff (``turn/diff/updated``).

Work is split in two phases so the server can ask for approval in between:

* :func:`plan_patch` reads the current files and computes every new file content. It never
  writes; any problem (bad syntax, a hunk that does not apply, a missing file) raises
  :class:`PatchError` before anything on disk has changed.
* :func:`apply_planned` writes a plan out, through :mod:`fd_write`: each file is reached from
  ``/`` by directory descriptors with ``O_NOFOLLOW`` on every component, along the path its
  directory resolved to when planned (``PlannedChange.target``), so a directory swapped for
  a symbolic link while the plan waited for approval fails the write instead of redirecting
  it; the caller's ``may_write`` is asked again right before each file changes.

A path that cannot name a file (a NUL byte, text the file system cannot encode, a name or
path too long) is refused while planning with ``invalid path …``. It must never decide
*whether* a change is allowed: sandbox and approval checks belong to the caller (see
``sandbox.is_path_writable``). It never runs external programs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from appserver.engine.tools.fd_write import FdTree, MayWrite, UnsafeWrite

__all__ = [
    "AddFile",
    "DeleteFile",
    "FileOp",
    "Hunk",
    "PatchError",
    "PlannedChange",
    "UpdateFile",
    "aggregate_diff",
    "apply_planned",
    "parse_patch",
    "plan_patch",
    "to_v2_changes",
]

BEGIN_PATCH = "*** Begin Patch"
END_PATCH = "*** End Patch"
ADD_FILE = "*** Add File: "
DELETE_FILE = "*** Delete File: "
UPDATE_FILE = "*** Update File: "
MOVE_TO = "*** Move to: "
END_OF_FILE = "*** End of File"

NAME_MAX = 255  # bytes in one path component (Linux, macOS)
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included

ChangeKind = Literal["add", "delete", "update"]
HunkTag = Literal[" ", "-", "+"]


class PatchError(Exception):
    """A patch that cannot be parsed or applied. ``message`` is meant for the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` chunk of an Update.

    ``lines`` are ``(tag, text)`` pairs in order, tag being ``" "`` (context), ``"-"`` or
    ``"+"``. ``context`` is the text after ``@@``, used to narrow the search.
    """

    context: str | None
    lines: list[tuple[HunkTag, str]]
    is_end_of_file: bool = False

    @property
    def old_lines(self) -> list[str]:
        """What the file must contain: context and removed lines."""
        return [text for tag, text in self.lines if tag != "+"]

    @property
    def new_lines(self) -> list[str]:
        """What the file will contain: context and added lines."""
        return [text for tag, text in self.lines if tag != "-"]


@dataclass(frozen=True)
class AddFile:
    path: str
    content: str


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class UpdateFile:
    path: str
    move_to: str | None
    hunks: list[Hunk]


FileOp = AddFile | DeleteFile | UpdateFile


@dataclass(frozen=True)
class PlannedChange:
    """One file's resolved change. Paths are absolute and normalised.

    ``label``/``move_label`` are the short names used in diff headers (relative to the
    planning cwd when inside it), kept so :func:`aggregate_diff` can rebuild diffs later.
    ``target``/``move_target`` are where the file will be written: its directory resolved
    (symbolic links followed) when planned, plus its name. The sandbox check must judge
    these, and :func:`apply_planned` writes exactly there, following no link.
    """

    path: str
    kind: ChangeKind
    move_path: str | None
    diff: str
    old_text: str | None
    new_text: str | None
    label: str = field(default="", compare=False)
    move_label: str | None = field(default=None, compare=False)
    target: str = field(default="", compare=False)
    move_target: str | None = field(default=None, compare=False)

    @property
    def write_target(self) -> str:
        return self.target or _target(self.path)

    @property
    def write_move_target(self) -> str | None:
        if self.move_path is None:
            return None
        return self.move_target or _target(self.move_path)


# --------------------------------------------------------------------------------------------
# Parsing


def _is_marker(stripped: str) -> bool:
    # Only known markers end a section, so a context line such as " ***" (a Markdown rule)
    # is still content.
    return stripped in (END_PATCH, END_OF_FILE) or stripped.startswith(
        (ADD_FILE, DELETE_FILE, UPDATE_FILE, MOVE_TO)
    )


def _strip_heredoc(lines: list[str]) -> list[str]:
    # Models sometimes send the shell form ``apply_patch <<'EOF' ... EOF``; accept it rather
    # than bouncing an otherwise valid patch back to them.
    if len(lines) >= 4 and lines[0].strip().startswith(("<<", "apply_patch <<")):
        last = lines[-1].strip()
        if last and lines[0].strip().endswith((last, f"'{last}'", f'"{last}"')):
            return lines[1:-1]
    return lines


def parse_patch(text: str) -> list[FileOp]:
    """Parse a patch into file operations. Raises :class:`PatchError` on bad syntax."""
    lines = _strip_heredoc(text.strip().splitlines())
    if not lines or lines[0].strip() != BEGIN_PATCH:
        raise PatchError(f"The first line of the patch must be '{BEGIN_PATCH}'")
    if lines[-1].strip() != END_PATCH:
        raise PatchError(f"The last line of the patch must be '{END_PATCH}'")
    body = lines[1:-1]
    ops: list[FileOp] = []
    i = 0
    while i < len(body):
        line = body[i]
        lineno = i + 2  # 1-based, counting the Begin Patch line
        # Marker lines are matched with surrounding whitespace tolerated: models indent them.
        marker = line.strip()
        if marker.startswith(ADD_FILE):
            path = _op_path(marker, ADD_FILE, lineno)
            i += 1
            content: list[str] = []
            while i < len(body) and not _is_marker(body[i].strip()):
                if not body[i].startswith("+"):
                    raise PatchError(
                        f"Invalid line {i + 2} in Add File '{path}': every line must start "
                        f"with '+', got {body[i]!r}"
                    )
                content.append(body[i][1:])
                i += 1
            ops.append(AddFile(path, "".join(f"{c}\n" for c in content)))
        elif marker.startswith(DELETE_FILE):
            ops.append(DeleteFile(_op_path(marker, DELETE_FILE, lineno)))
            i += 1
        elif marker.startswith(UPDATE_FILE):
            path = _op_path(marker, UPDATE_FILE, lineno)
            i += 1
            move_to: str | None = None
            if i < len(body) and body[i].strip().startswith(MOVE_TO):
                move_to = _op_path(body[i].strip(), MOVE_TO, i + 2)
                i += 1
            hunks, i = _parse_hunks(body, i, path)
            if not hunks and move_to is None:
                raise PatchError(f"Update File '{path}' (line {lineno}) has no hunks")
            ops.append(UpdateFile(path, move_to, hunks))
        elif marker == "":
            i += 1  # blank lines between file sections are harmless
        else:
            raise PatchError(
                f"Invalid line {lineno}: expected '{ADD_FILE.strip()}', "
                f"'{DELETE_FILE.strip()}' or '{UPDATE_FILE.strip()}', got {line!r}"
            )
    if not ops:
        raise PatchError("The patch contains no file operations")
    return ops


def _op_path(marker: str, prefix: str, lineno: int) -> str:
    path = marker[len(prefix) :].strip()
    if not path:
        raise PatchError(f"Missing path after '{prefix.strip()}' on line {lineno}")
    return path


def _parse_hunks(body: list[str], i: int, path: str) -> tuple[list[Hunk], int]:
    hunks: list[Hunk] = []
    context: str | None = None
    lines: list[tuple[HunkTag, str]] = []
    started = False  # a hunk is open (saw '@@' or a diff line)

    def close(eof: bool) -> None:
        nonlocal context, lines, started
        if started:
            if not lines:
                raise PatchError(f"Empty hunk in Update File '{path}'")
            hunks.append(Hunk(context, lines, eof))
        context, lines, started = None, [], False

    while i < len(body):
        line = body[i]
        stripped = line.strip()
        if stripped == END_OF_FILE:
            if not started:
                raise PatchError(f"'{END_OF_FILE}' without a hunk in Update File '{path}'")
            close(eof=True)
            i += 1
            continue
        if _is_marker(stripped):
            break  # next file op, or a stray marker the caller reports
        if line.startswith("@@"):
            if started and lines:
                close(eof=False)
            elif started:
                raise PatchError(f"Empty hunk in Update File '{path}' (line {i + 2})")
            header = line[2:].strip()
            context = header or None
            started = True
        elif line[:1] in (" ", "-", "+") or line == "":
            # A completely empty line is a context line whose leading space was lost.
            started = True
            tag: HunkTag = "-" if line[:1] == "-" else "+" if line[:1] == "+" else " "
            lines.append((tag, line[1:]))
        else:
            raise PatchError(
                f"Invalid line {i + 2} in Update File '{path}': hunk lines must start with "
                f"' ', '-', '+' or '@@', got {line!r}"
            )
        i += 1
    close(eof=False)
    return hunks, i


# --------------------------------------------------------------------------------------------
# Locating hunks

# Typographic characters models tend to substitute for ASCII; used only by the last,
# most forgiving matching pass.
_PUNCT = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
    }
)


def _exact(s: str) -> str:
    return s


def _rstrip(s: str) -> str:
    return s.rstrip()


def _strip(s: str) -> str:
    return s.strip()


def _punct(s: str) -> str:
    return s.strip().translate(_PUNCT)


_NORMALISERS: tuple[Callable[[str], str], ...] = (_exact, _rstrip, _strip, _punct)


def _find(lines: list[str], pattern: list[str], start: int, eof: bool) -> int | None:
    """Index where ``pattern`` occurs in ``lines`` at or after ``start``; None if nowhere.

    Passes go from exact to forgiving, so an exact match always wins over a fuzzy one.
    With ``eof`` the match at the very end of the file is preferred.
    """
    if not pattern:
        return start
    n = len(pattern)
    for norm in _NORMALISERS:
        want = [norm(p) for p in pattern]
        if eof and len(lines) - n >= start and [norm(x) for x in lines[-n:]] == want:
            return len(lines) - n
        for idx in range(start, len(lines) - n + 1):
            if all(norm(lines[idx + k]) == want[k] for k in range(n)):
                return idx
    return None


def _apply_hunks(lines: list[str], hunks: list[Hunk], display: str) -> list[str]:
    replacements: list[tuple[int, int, list[str]]] = []
    cursor = 0
    for number, hunk in enumerate(hunks, start=1):
        if hunk.context is not None:
            found = _find(lines, [hunk.context], cursor, eof=False)
            if found is None:
                raise PatchError(
                    f"Failed to find context '{hunk.context}' for hunk {number} in {display}"
                )
            cursor = found + 1
        entries = hunk.lines
        old = hunk.old_lines
        if not old:
            # Pure insertion: right after the @@ context if there is one, else at the end.
            at = cursor if hunk.context is not None else len(lines)
            replacements.append((at, 0, hunk.new_lines))
            cursor = at
            continue
        idx = _find(lines, old, cursor, hunk.is_end_of_file)
        if idx is None and entries[-1] == (" ", ""):
            # A trailing empty context line often stands for the file's final newline,
            # which is not a line of its own here.
            entries = entries[:-1]
            old = old[:-1]
            idx = _find(lines, old, cursor, hunk.is_end_of_file) if old else None
        if idx is None:
            shown = "\n".join(hunk.old_lines)
            raise PatchError(
                f"Failed to find expected lines in {display} (hunk {number}):\n{shown}"
            )
        # Context lines keep the file's own text: a fuzzy match must not rewrite them.
        pos = idx
        new: list[str] = []
        for tag, text in entries:
            if tag == " ":
                new.append(lines[pos])
            if tag != "+":
                pos += 1
            else:
                new.append(text)
        replacements.append((idx, len(old), new))
        cursor = idx + len(old)
    result = list(lines)
    # Apply back to front so earlier indices stay valid.
    for start, length, new in sorted(replacements, key=lambda r: r[0], reverse=True):
        result[start : start + length] = new
    return result


# --------------------------------------------------------------------------------------------
# Planning


def _resolve(path: str, cwd: Path) -> str:
    _check_path(path)
    resolved = os.path.normpath(os.path.join(os.fspath(cwd), os.path.expanduser(path)))
    _check_path(resolved, shown=path)
    return resolved


def _check_path(path: str, shown: str | None = None) -> None:
    """Refuse a path no file can have, with a message for the model."""
    shown = path if shown is None else shown

    def invalid(why: str) -> PatchError:
        return PatchError(f"invalid path {shown!r}: {why}")

    if "\x00" in path:
        raise invalid("it contains a NUL byte")
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        raise invalid("it is not text the file system can store") from None
    if len(raw) >= PATH_MAX:
        raise invalid(f"it is longer than {PATH_MAX - 1} bytes")
    if any(len(part) > NAME_MAX for part in raw.split(b"/")):
        raise invalid(f"a component is longer than {NAME_MAX} bytes")


def _target(abs_path: str) -> str:
    """Where ``abs_path`` is written: its directory with every link resolved, plus its name."""
    parent, name = os.path.split(abs_path)
    if not name:
        raise PatchError(f"invalid path {abs_path!r}: it names no file")
    return os.path.join(os.path.realpath(parent), name)


def _label(abs_path: str, cwd: Path) -> str:
    base = os.path.normpath(os.path.abspath(cwd))
    rel = os.path.relpath(abs_path, base)
    if rel == os.curdir or rel.startswith(os.pardir + os.sep) or rel == os.pardir:
        return abs_path.lstrip("/")
    return rel


def _read_text(path: str) -> str:
    try:
        # newline="" keeps CRLF intact so we can write it back the same way.
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise PatchError(f"{path} is not valid UTF-8 text") from exc
    except IsADirectoryError as exc:
        raise PatchError(f"{path} is a directory") from exc
    except OSError as exc:
        raise PatchError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def _split(text: str) -> tuple[list[str], str]:
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(eol)
    if lines and lines[-1] == "":
        lines.pop()
    return lines, eol


def _keepends(text: str) -> list[str]:
    # Not str.splitlines: it also breaks at form feeds and U+2028, which are not line ends
    # for diff tools.
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _unified(old: str | None, new: str | None, old_label: str, new_label: str) -> str:
    a = "/dev/null" if old is None else f"a/{old_label}"
    b = "/dev/null" if new is None else f"b/{new_label}"
    body = difflib.unified_diff(
        _keepends(old or ""),
        _keepends(new or ""),
        fromfile=a,
        tofile=b,
    )
    out: list[str] = []
    for line in body:
        if line.endswith("\n"):
            out.append(line)
        else:
            # difflib leaves the last line unterminated; mark it the way diff(1) does.
            out.append(line + "\n\\ No newline at end of file\n")
    if not out and old_label != new_label:
        out = [f"--- {a}\n", f"+++ {b}\n"]  # a pure rename has no hunks
    if not out:
        return ""
    return f"diff --git a/{old_label} b/{new_label}\n" + "".join(out)


def plan_patch(text: str, cwd: Path) -> list[PlannedChange]:
    """Parse ``text`` and compute every change against the files under ``cwd``.

    Operations in one patch see each other's effects (e.g. an Add then an Update of the same
    file). Nothing is written. Raises :class:`PatchError`.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PatchError(
            "the patch is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    ops = parse_patch(text)
    # Overlay of the patch's own effects: abs path -> content, or None once deleted.
    overlay: dict[str, str | None] = {}

    def current(path: str) -> str | None:
        if path in overlay:
            return overlay[path]
        if os.path.lexists(path):
            return _read_text(path)
        return None

    changes: list[PlannedChange] = []
    for op in ops:
        path = _resolve(op.path, cwd)
        label = _label(path, cwd)
        if isinstance(op, AddFile):
            if current(path) is not None:
                raise PatchError(f"Cannot add {op.path}: file already exists")
            overlay[path] = op.content
            diff = _unified(None, op.content, label, label)
            changes.append(
                PlannedChange(
                    path, "add", None, diff, None, op.content, label, target=_target(path)
                )
            )
        elif isinstance(op, DeleteFile):
            old = current(path)
            if old is None:
                raise PatchError(f"Cannot delete {op.path}: file does not exist")
            overlay[path] = None
            diff = _unified(old, None, label, label)
            changes.append(
                PlannedChange(path, "delete", None, diff, old, None, label, target=_target(path))
            )
        else:
            old = current(path)
            if old is None:
                raise PatchError(f"Cannot update {op.path}: file does not exist")
            if op.hunks:
                lines, eol = _split(old)
                new_lines = _apply_hunks(lines, op.hunks, op.path)
                new = eol.join(new_lines) + eol if new_lines else ""
            else:
                new = old
            move = _resolve(op.move_to, cwd) if op.move_to is not None else None
            if move == path:
                move = None
            move_label = _label(move, cwd) if move is not None else None
            overlay[path] = None if move is not None else new
            if move is not None:
                overlay[move] = new
            diff = _unified(old, new, label, move_label or label)
            changes.append(
                PlannedChange(
                    path,
                    "update",
                    move,
                    diff,
                    old,
                    new,
                    label,
                    move_label,
                    target=_target(path),
                    move_target=_target(move) if move is not None else None,
                )
            )
    return changes


# --------------------------------------------------------------------------------------------
# Applying


def _decoded(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "\x00undecodable"  # never equal to a planned text (those decoded)


def apply_planned(changes: Sequence[PlannedChange], *, may_write: MayWrite | None = None) -> None:
    """Write a plan produced by :func:`plan_patch`, in order, at each change's ``target``.

    Before writing anything, files are checked against the contents seen when planning
    (the plan may have waited for approval); a mismatch raises :class:`PatchError`. Every
    file is reached from ``/`` through directory descriptors with ``O_NOFOLLOW`` (see
    :mod:`fd_write`): a link found on the way now, or a directory that moved, raises
    :class:`PatchError` and nothing is written through it. ``may_write`` (the caller's
    rule) is asked with the path being changed right before each change. Each file is
    replaced atomically, but a failure half-way through a multi-file plan is not rolled back.
    """
    try:
        with FdTree(may_write) as tree:
            _apply(tree, changes)
    except UnsafeWrite as exc:
        raise PatchError(exc.message) from None
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise PatchError(f"cannot write{where}: {exc.strerror or exc}") from None


def _apply(tree: FdTree, changes: Sequence[PlannedChange]) -> None:
    expected: dict[str, str | None] = {}
    for ch in changes:
        # Only the first change of each path is checked against disk; later ones in the same
        # plan build on earlier ones.
        if ch.path not in expected:
            expected[ch.path] = ch.old_text
            if _decoded(tree.read(ch.write_target)) != ch.old_text:
                raise PatchError(f"{ch.path} changed on disk since the patch was planned")
        expected[ch.path] = ch.new_text if ch.move_path is None else None
        if ch.move_path is not None:
            expected[ch.move_path] = ch.new_text
    for ch in changes:
        if ch.kind == "add":
            _replace(tree, ch.write_target, ch.path, ch.new_text or "")
        elif ch.kind == "delete":
            _unlink(tree, ch.write_target, ch.path)
        else:
            dest = ch.write_move_target or ch.write_target
            _replace(tree, dest, ch.move_path or ch.path, ch.new_text or "")
            if ch.move_path is not None:
                _unlink(tree, ch.write_target, ch.path)


def _replace(tree: FdTree, target: str, shown: str, text: str) -> None:
    try:
        tree.replace(target, text.encode("utf-8"))
    except OSError as exc:
        raise PatchError(f"cannot write {shown}: {exc.strerror or exc}") from None


def _unlink(tree: FdTree, target: str, shown: str) -> None:
    try:
        tree.unlink(target)
    except OSError as exc:
        raise PatchError(f"cannot delete {shown}: {exc.strerror or exc}") from None


def to_v2_changes(changes: Sequence[PlannedChange]) -> list[dict[str, Any]]:
    """The v2 ``FileUpdateChange`` list for a ``fileChange`` item."""
    out: list[dict[str, Any]] = []
    for ch in changes:
        kind: dict[str, Any]
        if ch.kind == "update":
            kind = {"type": "update", "movePath": ch.move_path}
        else:
            kind = {"type": ch.kind}
        out.append({"path": ch.path, "kind": kind, "diff": ch.diff})
    return out


# --------------------------------------------------------------------------------------------
# Turn diff


@dataclass
class _Tracked:
    orig_label: str
    orig_text: str | None
    cur_label: str
    cur_text: str | None


def aggregate_diff(changes: Iterable[PlannedChange | Iterable[PlannedChange]]) -> str:
    """The turn's unified diff: for every touched file, original content vs. latest.

    ``changes`` is every change applied in the turn, in order (plans may be passed as nested
    lists). A file changed several times shows one diff; a file added then deleted, or
    changed back to its original text, shows nothing.
    """
    flat: list[PlannedChange] = []
    for item in changes:
        if isinstance(item, PlannedChange):
            flat.append(item)
        else:
            flat.extend(item)

    by_path: dict[str, _Tracked] = {}  # keyed by *current* absolute path
    order: list[_Tracked] = []

    def track(path: str, label: str, text: str | None) -> _Tracked:
        entry = by_path.get(path)
        if entry is None:
            entry = _Tracked(label, text, label, text)
            by_path[path] = entry
            order.append(entry)
        return entry

    for ch in flat:
        label = ch.label or ch.path.lstrip("/")
        entry = track(ch.path, label, ch.old_text)
        if ch.move_path is None:
            entry.cur_text = ch.new_text
            continue
        # A move: the entry follows the content to its new path. Whatever was tracked at the
        # destination is overwritten, so it now reads as deleted.
        del by_path[ch.path]
        replaced = by_path.pop(ch.move_path, None)
        if replaced is not None:
            replaced.cur_text = None
        entry.cur_label = ch.move_label or ch.move_path.lstrip("/")
        entry.cur_text = ch.new_text
        by_path[ch.move_path] = entry

    parts: list[str] = []
    for e in order:
        if e.orig_text == e.cur_text and e.orig_label == e.cur_label:
            continue
        if e.orig_text is None and e.cur_text is None:
            continue
        parts.append(_unified(e.orig_text, e.cur_text, e.orig_label, e.cur_label))
    return "".join(parts)
