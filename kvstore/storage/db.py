"""One LevelDB database per node, and the write batch that groups a Ready.

`Batch` collects puts and deletes in a dict (the last write to a key wins),
answers reads of its own pending writes (so the MVCC store can read what an
earlier entry of the same Ready wrote), and hands everything to LevelDB as
ONE plyvel WriteBatch on `commit()`, with `sync=True` when asked. Callbacks
registered with `after_commit` run once the batch is on disk.

Failure model: components update their in-memory state while they stage
writes. If `commit()` raises, memory is ahead of disk and the process must
stop (treat it as a crash); reopening recovers from disk alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import plyvel  # type: ignore[import-untyped]

from kvstore.storage import keys


class StorageClosed(Exception):
    """The database was used after close()."""


class Database:
    """A thin wrapper over plyvel.DB with the node's key layout."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: Any = plyvel.DB(path, create_if_missing=True)
        fmt = self._db.get(keys.META_FORMAT)
        if fmt is None:
            self._db.put(keys.META_FORMAT, keys.FORMAT_VERSION, sync=True)
        elif fmt != keys.FORMAT_VERSION:
            raise ValueError(f"unsupported on-disk format {fmt!r} in {path}")

    @property
    def raw(self) -> Any:
        if self._db is None:
            raise StorageClosed(self.path)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def closed(self) -> bool:
        return self._db is None

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.raw.get(key)
        return value

    def batch(self, sync: bool = False) -> Batch:
        return Batch(self, sync)

    def iterate(
        self, start: bytes, stop: bytes, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed pairs with start <= key < stop, in key order."""
        it: Iterator[tuple[bytes, bytes]] = self.raw.iterator(
            start=start, stop=stop, reverse=reverse
        )
        return it

    def iterate_keys(self, start: bytes, stop: bytes, reverse: bool = False) -> Iterator[bytes]:
        it: Iterator[bytes] = self.raw.iterator(
            start=start, stop=stop, reverse=reverse, include_value=False
        )
        return it


class Batch:
    """Staged writes with read-your-writes, committed as one WriteBatch."""

    __slots__ = ("_callbacks", "_db", "_done", "_pending", "sync")

    def __init__(self, db: Database, sync: bool) -> None:
        self._db = db
        self._pending: dict[bytes, bytes | None] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._done = False
        self.sync = sync

    def put(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def delete(self, key: bytes) -> None:
        self._pending[key] = None

    def get(self, key: bytes) -> bytes | None:
        pending = self._pending
        if key in pending:
            return pending[key]
        return self._db.get(key)

    def require_sync(self) -> None:
        """Ask for an fsync at commit (a Ready with must_sync, an ack'd write)."""
        self.sync = True

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def __len__(self) -> int:
        return len(self._pending)

    def commit(self) -> None:
        self.seal()()
        self.finish()

    def seal(self) -> Callable[[], None]:
        """Close the batch to new writes and return the function that writes
        it. LevelDB releases the GIL while writing, so a caller may run that
        function on another thread; it must call finish() afterwards."""
        if self._done:
            raise RuntimeError("batch already committed")
        self._done = True
        pending, self._pending = self._pending, {}
        if not pending:
            return _nothing
        wb = self._db.raw.write_batch(sync=self.sync)
        for key, value in pending.items():
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        write: Callable[[], None] = wb.write
        return write

    def finish(self) -> None:
        """Run the after-commit callbacks, once the sealed write is done."""
        for callback in self._callbacks:
            callback()
        self._callbacks.clear()

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._done = True
            self._pending = {}
            self._callbacks.clear()


def _nothing() -> None:
    return None
