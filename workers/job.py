"""The one `job` decorator: a function implements a task declared in `couponsvc.tasks`.

RQ imports a job by the dotted path its declaration names and calls it in the worker
process, where `couponsvc worker` has already pushed an application context. Called
directly (the in-process runner, tests) the function simply runs. The decorator
refuses a function that is not the one its task names, at import.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from couponsvc.extensions import db
from couponsvc.tasks import Task


def job(task: Task) -> Callable:
    def decorator(fn: Callable) -> Callable:
        path = f"{fn.__module__}.{fn.__qualname__}"
        if path != task.function:
            raise ValueError(f"task {task.name} is declared as {task.function}, not {path}")

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

        wrapper.task = task
        return wrapper

    return decorator
