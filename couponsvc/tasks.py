"""Background tasks, declared once: each task's name, queue and function, and the queues.

Declared here, in couponsvc, and implemented in `workers/`: a declaration names its
function by dotted path, which only the process that runs the job imports (an RQ
worker, or the in-process runner of `jobs.py`), so the web app never imports
`workers/` (nor RQ's worker machinery) to send work. Code sends a task through its
declaration, `jobs.enqueue(tasks.ISSUE_BULK, job_id)`; `jobs.enqueue` refuses
anything else. `workers/` implements each with `@job(tasks.X)`, which fails at
import if the function is not the one declared, and `tests/test_tasks.py` resolves
every declaration, so a name, a queue and a function cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# Queue names. `couponsvc worker` listens to them in this order (deliveries first:
# a drain is short and someone waits for it; a bulk job can run for minutes).
DELIVERIES = "deliveries"
DEFAULT = "default"
BULK = "bulk"
QUEUES = (DELIVERIES, DEFAULT, BULK)


@dataclass(frozen=True)
class Task:
    name: str
    queue: str
    function: str  # dotted path of its implementation in workers/
    timeout: int = 3600  # seconds RQ lets one run take

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"task {self.name}: unknown queue {self.queue!r}")


DRAIN = Task("drain", DELIVERIES, "workers.deliver.drain", timeout=300)
ISSUE_BULK = Task("issue-bulk", BULK, "workers.bulk.issue_bulk")
RELAY_SWEEP = Task("relay-sweep", DEFAULT, "workers.relay.sweep", timeout=600)
BULK_SWEEP = Task("bulk-sweep", DEFAULT, "workers.bulk.sweep", timeout=600)
CLOSE_DUE = Task("close-due", DEFAULT, "workers.relay.close_due", timeout=600)
PARTITIONS = Task("partitions", DEFAULT, "workers.upkeep.partitions")

TASKS = (DRAIN, ISSUE_BULK, RELAY_SWEEP, BULK_SWEEP, CLOSE_DUE, PARTITIONS)
