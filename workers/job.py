"""The one `job` decorator: a function implements a task declared in `couponsvc.tasks`.

RQ imports a job by the dotted path its declaration names and calls it in the worker
process, where `couponsvc worker` has already pushed an application context. Called
directly (the in-process runner, tests) the function simply runs. Either way the run is
that of the request that queued it (`couponsvc/job_context.py`: its request id bound,
its trace continued, the run logged and counted), from the RQ job's meta or what the
in-process runner handed over. The decorator refuses a function that is not the one its
task names, at import.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from rq import get_current_job

from couponsvc import job_context
from couponsvc.extensions import db
from couponsvc.tasks import Task


def job(task: Task) -> Callable:
    def decorator(fn: Callable) -> Callable:
        path = f"{fn.__module__}.{fn.__qualname__}"
        if path != task.function:
            raise ValueError(f"task {task.name} is declared as {task.function}, not {path}")

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            rq_job = get_current_job()
            meta, job_id = ((rq_job.meta, rq_job.id) if rq_job is not None
                            else job_context.handed_meta())
            try:
                with job_context.running(task.name, job_id, meta):
                    return fn(*args, **kwargs)
            finally:
                db.session.remove()

        wrapper.task = task
        return wrapper

    return decorator
