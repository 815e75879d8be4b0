"""Every periodic job, declared once, with ids derived from its definition.

Each worker runs a ticker that, once per interval, enqueues each job under the id
`periodic-<name>-<hash of its definition>-<time slot>` with RQ's `unique=True`:
any number of workers on any number of machines, restarted any number of times,
queue each slot's run once; an edited definition gets a new id at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from couponsvc import tasks
from couponsvc.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    task: Task
    every: int  # seconds

    @property
    def definition_hash(self) -> str:
        text = f"{self.name}|{self.task.function}|{self.every}|{self.task.queue}"
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def job_id(self, now: float) -> str:
        return f"periodic-{self.name}-{self.definition_hash}-{int(now // self.every)}"


def schedule(config) -> tuple[Periodic, ...]:
    return (
        Periodic("relay-sweep", tasks.RELAY_SWEEP, config["SWEEP_INTERVAL"]),
        Periodic("bulk-sweep", tasks.BULK_SWEEP, config["SWEEP_INTERVAL"]),
        Periodic("close-due", tasks.CLOSE_DUE, 60),
        Periodic("partitions", tasks.PARTITIONS, 86400),
    )


def tick(jobs: tuple[Periodic, ...], enqueue: Callable[..., bool], now: float,
         seen: dict[str, str] | None = None) -> list[str]:
    """Enqueue this slot's run of every job not yet tried in it; return the ids queued."""
    seen = {} if seen is None else seen
    queued = []
    for periodic in jobs:
        job_id = periodic.job_id(now)
        if seen.get(periodic.name) == job_id:
            continue
        if enqueue(periodic.task, job_id=job_id):
            queued.append(job_id)
        seen[periodic.name] = job_id
    return queued


class Ticker(threading.Thread):
    def __init__(self, jobs: tuple[Periodic, ...], enqueue: Callable[..., bool], resolution: float = 1.0):
        super().__init__(name="couponsvc-ticker", daemon=True)
        self.jobs, self.enqueue, self.resolution = jobs, enqueue, resolution
        self.stopped = threading.Event()
        self.seen: dict[str, str] = {}

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                tick(self.jobs, self.enqueue, time.time(), self.seen)
            except Exception:  # Redis away: the next tick tries again
                log.warning("periodic enqueue failed", exc_info=True)
            self.stopped.wait(self.resolution)

    def stop(self) -> None:
        self.stopped.set()
