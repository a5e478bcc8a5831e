"""Ask real bash which commands a script runs: the oracle for the parser's property tests.

The script runs with ``bash -c`` in an empty scratch directory, with ``PATH`` pointing at an
empty directory and a ``command_not_found_handle`` (installed through ``BASH_ENV``) that
records each command's argv instead of running it. So every external command the script
would run is recorded, and none runs; files it would create by redirection appear in the
scratch directory. Builtins still run: the generated scripts avoid their names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_PRELUDE = """
command_not_found_handle() {
    printf '%s\\0' "$@" > "$ORACLE_LOG/$BASHPID.$((++ORACLE_N))"
    return 0
}
"""


@dataclass(frozen=True)
class Run:
    argvs: list[list[str]]  # every command bash tried to run (order not meaningful)
    created: list[str]  # names that appeared in the scratch directory


def available() -> bool:
    return shutil.which("bash") is not None


def run(script: str, timeout_s: float = 5.0) -> Run:
    with tempfile.TemporaryDirectory(prefix="bash-oracle-") as tmp:
        base = Path(tmp)
        log, scratch, empty = base / "log", base / "scratch", base / "empty-path"
        for d in (log, scratch, empty):
            d.mkdir()
        prelude = base / "prelude.sh"
        prelude.write_text(_PRELUDE)
        env = {
            "PATH": str(empty),
            "BASH_ENV": str(prelude),
            "ORACLE_LOG": str(log),
            "HOME": str(base / "nohome"),
            "LC_ALL": "C",
        }
        bash = shutil.which("bash")
        assert bash is not None
        subprocess.run(
            [bash, "-c", script],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
        argvs = []
        for record in sorted(log.iterdir()):
            data = record.read_bytes()
            argvs.append(data.decode("utf-8", "surrogateescape").split("\0")[:-1])
        return Run(argvs, sorted(os.listdir(scratch)))
