"""``fs/watch``: filesystem watches per connection, reported as ``fs/changed``.

Owns the watch table (connection id → watch id → watch). Each watch is one ``watchfiles``
``RustNotify`` (the Rust ``notify`` crate: inotify on Linux), set up before ``fs/watch``
answers, so a change made after the reply is always seen; a dedicated thread waits on it
(a thread per watch, not the shared worker pool: a wait lasts as long as the watch) and
hands each debounced batch of changed paths to the event loop. Watches end with
``fs/unwatch``, when their connection closes, and at server stop.

Changed paths are reported only when they lie beneath the watched (resolved) path. It must
never watch a path the boundary has not resolved and checked.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from watchfiles._rust_notify import RustNotify

from appserver.protocol.errors import invalid_request

__all__ = ["MAX_WATCHES_PER_CONNECTION", "Watches"]

log = logging.getLogger("appserver.host")

MAX_WATCHES_PER_CONNECTION = 256
DEBOUNCE_MS = 200
STEP_MS = 30
WAIT_MS = 500  # how often a waiting thread looks at its stop flag

Notify = Callable[[int, str, list[str]], Coroutine[Any, Any, None]]  # (connection, watchId, paths)


@dataclass
class _Watch:
    path: str
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def _beneath(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class Watches:
    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._by_conn: dict[int, dict[str, _Watch]] = {}

    def watch(self, conn_id: int, watch_id: str, real_path: str) -> None:
        """Start watching ``real_path`` (resolved and checked by the caller). Raises
        -32600 for a watch id in use, ``OSError`` when the path cannot be watched."""
        watches = self._by_conn.setdefault(conn_id, {})
        if watch_id in watches:
            raise invalid_request(f"Invalid request: watchId `{watch_id}` is already in use")
        if len(watches) >= MAX_WATCHES_PER_CONNECTION:
            raise invalid_request(
                f"Invalid request: at most {MAX_WATCHES_PER_CONNECTION} watches per connection"
            )
        notify = RustNotify([real_path], False, False, 300, True, True)
        watch = _Watch(real_path)
        loop = asyncio.get_running_loop()

        def deliver(paths: list[str]) -> None:
            if watches.get(watch_id) is watch:
                task = loop.create_task(self._notify(conn_id, watch_id, paths))
                task.add_done_callback(_log_failure)

        def run() -> None:
            try:
                while not watch.stop.is_set():
                    found = notify.watch(DEBOUNCE_MS, STEP_MS, WAIT_MS, watch.stop)
                    if isinstance(found, set) and found:
                        paths = sorted({p for _, p in found if _beneath(p, real_path)})
                        if paths:
                            loop.call_soon_threadsafe(deliver, paths)
            except Exception:
                log.exception("fs/watch %s stopped", real_path)
            finally:
                notify.close()

        watch.thread = threading.Thread(target=run, name=f"fs-watch-{watch_id}", daemon=True)
        watches[watch_id] = watch
        watch.thread.start()

    def unwatch(self, conn_id: int, watch_id: str) -> bool:
        watch = self._by_conn.get(conn_id, {}).pop(watch_id, None)
        if watch is None:
            return False
        watch.stop.set()
        return True

    def drop_connection(self, conn_id: int) -> None:
        for watch in self._by_conn.pop(conn_id, {}).values():
            watch.stop.set()

    def close(self) -> None:
        for conn_id in list(self._by_conn):
            self.drop_connection(conn_id)

    def count(self, conn_id: int) -> int:
        return len(self._by_conn.get(conn_id, {}))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("fs/changed not delivered: %s", task.exception())
