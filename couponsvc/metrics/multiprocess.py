"""The multiprocess directory: where each process of a group writes its counts.

prometheus_client's multiprocess mode: every process of a gunicorn (or of `couponsvc
worker --processes N`) writes its counters and histograms to memory-mapped files in one
directory, named in `PROMETHEUS_MULTIPROC_DIR` before `prometheus_client` is imported;
a scrape, answered by any one of them, adds up every file. The group's start-up names
the directory (the variable's, else a new temporary one) and empties it, since files
left by an earlier run would be counted again; a process that exits is marked dead
(`mark_dead`), so its live gauges go, while its counts stay in the sums.

One directory per group: a gunicorn and a worker group on the same host must not share
one (each empties it when it starts).
"""

from __future__ import annotations

import glob
import os
import tempfile

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def directory() -> str | None:
    """The multiprocess directory of this process's group; None when it counts alone."""
    return os.environ.get(VARIABLE) or None


def prepare(path: str | None = None) -> str:
    """Name the group's directory in the environment (`path`, the variable's, or a new
    one), made if missing; its path. Call before `prometheus_client` is imported."""
    path = path or directory() or tempfile.mkdtemp(prefix="couponsvc-metrics-")
    os.makedirs(path, exist_ok=True)
    os.environ[VARIABLE] = path
    return path


def wipe(path: str) -> None:
    """Delete the count files of an earlier run (at the group's start, before any process)."""
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)


def mark_dead(pid: int, path: str | None = None) -> None:
    """A process of the group exited: drop its live gauges (its counts stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path or directory())


def registry(path: str | None = None):
    """What a scrape reads: the sum of the group's files when there is a group (or
    `path`), else this process's own registry."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    path = path or directory()
    if path is None:
        return REGISTRY
    summed = CollectorRegistry()
    MultiProcessCollector(summed, path=path)
    return summed
