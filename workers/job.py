"""The one `job` decorator: a task names its queue; the app context is set up for it.

RQ imports a job by its dotted path and calls it in the worker process, where
`couponsvc worker` has already pushed an application context. Called directly
(the in-process runner, tests) the function simply runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from couponsvc.extensions import db

from . import queues


def job(queue: str = queues.DEFAULT) -> Callable:
    if queue not in queues.ALL:
        raise ValueError(f"unknown queue {queue!r}")

    def decorator(fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

        wrapper.queue = queue
        wrapper.path = f"{fn.__module__}.{fn.__qualname__}"
        return wrapper

    return decorator
