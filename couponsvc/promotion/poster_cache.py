"""Drawn posters, kept by their key (`poster.key`: the words, the fonts, the layout).

A poster changes only when what it says changes (a new title, one buyer fewer to tip, the
deal ended), so its key is the cache's key and nothing needs invalidating: a changed
campaign asks for another key. Two levels:

- in memory, least recently used first out, up to `memory_bytes` (a poster is ~100-150 KB);
- on disk under `directory` (the instance folder's `posters/`), shared by the processes of
  one host, written atomically (a temporary file renamed into place) and pruned to the
  newest `disk_files`.

No Flask here.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from pathlib import Path

from cachetools import LRUCache

_KEY = re.compile(r"^[0-9a-f]{16,64}$")


class PosterCache:
    def __init__(self, directory: str | os.PathLike | None, *, memory_bytes: int = 32 * 2**20,
                 disk_files: int = 2000) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.disk_files = disk_files
        self._memory: LRUCache[str, bytes] = LRUCache(maxsize=memory_bytes, getsizeof=len)
        self._lock = threading.Lock()
        self._writes = 0

    def get(self, key: str) -> bytes | None:
        _check(key)
        with self._lock:
            data = self._memory.get(key)
        if data is not None or self.directory is None:
            return data
        try:
            data = (self.directory / f"{key}.png").read_bytes()
        except OSError:
            return None
        self._remember(key, data)
        return data

    def put(self, key: str, data: bytes) -> None:
        _check(key)
        self._remember(key, data)
        if self.directory is None:
            return
        temporary = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".poster-")
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, self.directory / f"{key}.png")
        except OSError:  # a full or read-only disk: the memory level still serves
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            return
        self._writes += 1
        if self._writes % 50 == 0:
            self.prune()

    def prune(self) -> None:
        """Keep the newest `disk_files` posters on disk."""
        if self.directory is None:
            return
        try:
            files = [(entry.stat().st_mtime, entry.path) for entry in os.scandir(self.directory)
                     if entry.name.endswith(".png")]
        except OSError:
            return
        files.sort(reverse=True)
        for _, path in files[self.disk_files:]:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def _remember(self, key: str, data: bytes) -> None:
        with self._lock:
            if len(data) <= self._memory.maxsize:
                self._memory[key] = data


def _check(key: str) -> None:
    if not _KEY.match(key):  # the key names a file: hex only
        raise ValueError(f"not a poster key: {key!r}")
