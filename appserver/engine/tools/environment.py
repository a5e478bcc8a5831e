"""The environment of the commands the agent runs: the server's, minus every credential.

Owns ``EnvironmentPolicy`` (Codex's ``[shell_environment_policy]`` table: ``inherit``,
``ignore_default_excludes``, ``exclude``, ``set``, ``include_only``, plus our ``allow``) and
the credential detectors it applies by default:

* every variable a provider config names (``env_key``, the values of ``env_http_headers``,
  ``bearer_token_env_var``), and any variable holding the same value as one of those;
* names with a credential word: ``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD``, ``PASSWD``,
  ``CREDENTIAL``, ``CREDS``, ``COOKIE`` anywhere in the name; ``PAT``, ``PASS``, ``PWD``,
  ``AUTHN``, ``AUTHZ``, ``AUTHORIZATION`` or a word ending in ``AUTH`` as a whole
  ``_``-separated part (``GITHUB_PAT``, ``SMTP_PASS``, ``MYSQL_PWD``, ``NEXTAUTH_URL``;
  ``PATH``, ``PWD``, ``OLDPWD``, ``GIT_AUTHOR_NAME`` and ``XAUTHORITY`` stay);
* values that carry a credential whatever the name: a URL with a password
  (``postgres://user:pass@host/db``) or a long user part (a token as user), and well-known
  token shapes (``ghp_…``, ``github_pat_…``, ``glpat-…``, ``sk-…``, ``xoxb-…``, ``AKIA…``,
  ``AIza…``, ``npm_…``, JWTs, PEM private keys).

Names matching ``allow`` (globs, case-insensitive) are kept despite the detectors; the user's
``exclude`` still removes them. With ``ignore_default_excludes = true`` the detectors are off
altogether (Codex's default is ``true`` there; ours is ``false``: scrubbing is on).

It must never return a variable the detectors flag unless the user's config allows it by
name, and never log a variable's value.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "EnvironmentPolicy",
    "PolicyError",
    "command_environment",
    "looks_secret",
    "value_looks_secret",
]

Inherit = Literal["all", "core", "none"]

# Codex's "core" set (plus LANG/LC_ALL/TERM, which a command's output depends on).
CORE_VARS = frozenset(
    {"HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP", "LANG"}
    | {"LC_ALL", "LC_CTYPE", "TERM"}
)

_SECRET_SUBSTRINGS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "CREDS",
    "COOKIE",
)
_SECRET_PARTS = frozenset({"PAT", "PASS", "AUTHN", "AUTHZ", "AUTHORIZATION"})
_PART_SPLIT = re.compile(r"[^A-Z0-9]+")
_DIRECTORY_VARS = frozenset({"PWD", "OLDPWD"})

# A URL whose authority has a user part: ``scheme://user[:password]@host``.
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s@]+)@", re.ASCII)
_TOKEN_USER_CHARS = 20  # a user part this long is a token (``https://<token>@github.com``)
_TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|sk-[A-Za-z0-9_-]{16,}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|AIza[A-Za-z0-9_-]{35}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|-----BEGIN[A-Z ]*PRIVATE KEY-----"
    r")",
    re.ASCII,
)
_MIN_SHARED_VALUE = 8  # a provider credential's value reused under another name


class PolicyError(ValueError):
    """``[shell_environment_policy]`` is malformed; the message names the key."""


def looks_secret(name: str) -> bool:
    """Whether a variable's *name* says it holds a credential (see the module docstring)."""
    upper = name.upper()
    if any(word in upper for word in _SECRET_SUBSTRINGS):
        return True
    parts = _PART_SPLIT.split(upper)
    if "PWD" in parts and upper not in _DIRECTORY_VARS:  # MYSQL_PWD; not PWD, OLDPWD
        return True
    return any(part in _SECRET_PARTS or part.endswith("AUTH") for part in parts)


def value_looks_secret(value: str) -> bool:
    """Whether a variable's *value* carries a credential: a URL with a password or a
    token as its user, or a well-known token shape."""
    for match in _URL_USERINFO.finditer(value):
        user, colon, password = match.group(1).partition(":")
        if (colon and password) or len(user) >= _TOKEN_USER_CHARS:
            return True
    return _TOKEN_SHAPES.search(value) is not None


def _patterns(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"shell_environment_policy.{key} must be a list of strings")
    return tuple(value)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns)


@dataclass(frozen=True)
class EnvironmentPolicy:
    """How a command's environment is derived from the server's (Codex's algorithm, with
    the credential detectors as the default excludes):

    1. start from ``inherit``: ``all`` variables, the ``core`` set, or ``none``;
    2. unless ``ignore_default_excludes``, drop provider-named variables and whatever the
       detectors flag, except names matching ``allow``;
    3. drop names matching ``exclude``;
    4. add ``set``;
    5. when ``include_only`` is not empty, keep only names matching it.
    """

    provider_vars: frozenset[str] = frozenset()
    inherit: Inherit = "all"
    ignore_default_excludes: bool = False
    exclude: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    include_only: tuple[str, ...] = ()
    set: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, table: Any, provider_vars: Iterable[str] = ()) -> EnvironmentPolicy:
        """Read a ``[shell_environment_policy]`` table (None or missing: the defaults)."""
        names = frozenset(provider_vars)
        if table is None:
            return cls(provider_vars=names)
        if not isinstance(table, Mapping):
            raise PolicyError("shell_environment_policy must be a table")
        inherit = table.get("inherit", "all")
        if inherit not in ("all", "core", "none"):
            raise PolicyError("shell_environment_policy.inherit must be all, core or none")
        ignore = table.get("ignore_default_excludes", False)
        if not isinstance(ignore, bool):
            raise PolicyError("shell_environment_policy.ignore_default_excludes must be a bool")
        values = table.get("set", {})
        if not isinstance(values, Mapping):
            raise PolicyError("shell_environment_policy.set must be a table")
        return cls(
            provider_vars=names,
            inherit=inherit,
            ignore_default_excludes=ignore,
            exclude=_patterns(table, "exclude"),
            allow=_patterns(table, "allow"),
            include_only=_patterns(table, "include_only"),
            set={str(k): str(v) for k, v in values.items()},
        )

    def build(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for one command, from ``base`` (default: ours)."""
        source = os.environ if base is None else base
        if self.inherit == "all":
            env = dict(source)
        elif self.inherit == "core":
            env = {k: v for k, v in source.items() if k in CORE_VARS}
        else:
            env = {}
        if not self.ignore_default_excludes:
            shared = {
                source[name]
                for name in self.provider_vars
                if len(source.get(name, "").strip()) >= _MIN_SHARED_VALUE
            }
            env = {
                k: v
                for k, v in env.items()
                if _matches(k, self.allow)
                or not (
                    k in self.provider_vars
                    or v in shared
                    or looks_secret(k)
                    or value_looks_secret(v)
                )
            }
        if self.exclude:
            env = {k: v for k, v in env.items() if not _matches(k, self.exclude)}
        env.update(self.set)
        if self.include_only:
            env = {k: v for k, v in env.items() if _matches(k, self.include_only)}
        return env


def command_environment(
    secret_names: Iterable[str] = (), base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The default policy's environment: ``base`` (default: ours) without ``secret_names``
    and without whatever the credential detectors flag."""
    return EnvironmentPolicy(provider_vars=frozenset(secret_names)).build(base)
