"""What a job carries from the request that queued it, and what its run leaves behind.

`capture()` is taken when a job is queued (`jobs.enqueue`): the request id and, while
traces are recorded, the trace context (`traceparent`). It travels in the RQ job's
meta (or, in process, beside the job). `running()` wraps every run of a job, on an RQ
worker or on the in-process runner's threads (`workers/job.py`): it binds that request
id again, so the job's log lines and the deliveries it makes name the request that
caused them; continues the trace; logs the run (INFO for a job a request caused, DEBUG
for the periodic ones, which run every second); and counts it
(`couponsvc_jobs_total{task,outcome}`, `couponsvc_job_seconds{task}`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from . import request_id, tracing
from .metrics.catalog import JOB_SECONDS, JOBS
from .metrics.switch import counting

log = logging.getLogger("couponsvc.jobs")

REQUEST_ID = "request_id"
TRACE = "trace"

_HANDED: ContextVar[tuple[dict[str, Any], str | None] | None] = ContextVar(
    "couponsvc_job_meta", default=None)


def capture() -> dict[str, Any]:
    """The meta of a job queued now: the request id and trace context, if any."""
    meta: dict[str, Any] = {}
    rid = request_id.current()
    if rid is not None:
        meta[REQUEST_ID] = rid
    headers = tracing.carrier()
    if headers:
        meta[TRACE] = headers
    return meta


@contextlib.contextmanager
def handed(meta: dict[str, Any], job_id: str | None) -> Iterator[None]:
    """The in-process runner hands a job its meta (RQ keeps it on the job)."""
    token = _HANDED.set((meta, job_id))
    try:
        yield
    finally:
        _HANDED.reset(token)


def handed_meta() -> tuple[dict[str, Any], str | None]:
    """(meta, job id) handed in process; ({}, None) when none was."""
    return _HANDED.get() or ({}, None)


@contextlib.contextmanager
def running(task: str, job_id: str | None, meta: dict[str, Any]) -> Iterator[None]:
    """Run a job of `task` as the request in `meta` would: its id bound, its trace
    continued; log and count the run."""
    rid = meta.get(REQUEST_ID)
    level = logging.INFO if rid is not None else logging.DEBUG
    token = request_id.bind(rid)
    started = time.perf_counter()
    outcome = "failed"
    try:
        with tracing.job_span(f"job {task}", meta.get(TRACE) or {}, task=task, job_id=job_id,
                              request_id=rid):
            log.log(level, "job %s started", task, extra={"task": task, "job_id": job_id})
            yield
        outcome = "succeeded"
    finally:
        seconds = time.perf_counter() - started
        log.log(level if outcome == "succeeded" else logging.WARNING, "job %s %s", task, outcome,
                extra={"task": task, "job_id": job_id, "outcome": outcome,
                       "duration_ms": round(seconds * 1000, 2)})
        if counting():
            JOBS.labels(task, outcome).inc()
            JOB_SECONDS.labels(task).observe(seconds)
        request_id.unbind(token)
