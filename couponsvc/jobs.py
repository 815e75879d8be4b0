"""Sending work to the background: RQ on Redis, or a thread inside this process.

A job is a run of a task declared in `tasks.py` (name, queue, function by dotted
path), so the web app never imports `workers/`. With `REDIS_URL` set jobs go to RQ
(`couponsvc worker` runs them); without it they run on background threads of the
serving process, after the response, so the embedded default works with nothing else
running.
Call `enqueue` through `after_commit`, never before the commit. A job carries the
request id and trace context of the request that queued it (`job_context.py`): in the
RQ job's meta, or handed to the in-process thread.

In process, at most `MAX_IN_PROCESS_JOBS` jobs wait or run at once (on
`IN_PROCESS_THREADS` threads); past that `enqueue` raises `QueueFull` and the job is
not queued. That is safe: what a job would do is in the database, and a sweep finds
it (the relay sweep wakes every integration with deliveries due, the bulk sweep runs
bulk jobs nobody runs, the ticker queues periodic jobs again next second).
"""

from __future__ import annotations

import importlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Flask, current_app

from . import job_context
from .tasks import Task

log = logging.getLogger(__name__)

_TICKER_LOCK = threading.Lock()
IN_PROCESS_THREADS = 4
MAX_IN_PROCESS_JOBS = 256


class QueueFull(RuntimeError):
    """The in-process runner has MAX_IN_PROCESS_JOBS jobs already; a sweep will find the work."""


class JobRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.redis_url: str | None = app.config.get("REDIS_URL")
        self._redis = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future] = set()
        self._pending_ids: set[str] = set()  # in-process, a job id is unique while it waits or runs
        self._mutex = threading.Lock()

    @property
    def in_process(self) -> bool:
        return not self.redis_url

    def redis(self):
        if self._redis is None:
            from .redis_client import redis_client

            self._redis = redis_client(self.redis_url, socket_timeout=5, socket_connect_timeout=2)
        return self._redis

    def enqueue(self, task: Task, *args: Any, job_id: str | None = None) -> bool:
        """Queue a run of `task`; False when a job with `job_id` already exists.

        A `job_id` makes the enqueue unique: a periodic job's slot is queued once, however
        many workers' tickers ask for it.
        """
        if not isinstance(task, Task):
            raise TypeError(f"enqueue a task declared in couponsvc.tasks, not {task!r}")
        meta = job_context.capture()
        if self.in_process:
            return self._submit_here(task.function, args, job_id, meta)
        from rq import Queue
        from rq.exceptions import DuplicateJobError

        rq_queue = Queue(task.queue, connection=self.redis())
        options = {"job_id": job_id, "unique": job_id is not None, "job_timeout": task.timeout,
                   "failure_ttl": 7 * 86400, "result_ttl": 600}
        if meta:
            options["meta"] = meta
        try:
            rq_queue.enqueue(task.function, *args, **options)
        except DuplicateJobError:
            return False
        return True

    def _submit_here(self, func_path: str, args: tuple[Any, ...], job_id: str | None,
                     meta: dict[str, Any]) -> bool:
        with self._mutex:
            if job_id is not None and job_id in self._pending_ids:
                return False  # as RQ's unique ids: a sweep does not pile up copies of a waiting job
            if len(self._pending) >= MAX_IN_PROCESS_JOBS:
                raise QueueFull(f"{len(self._pending)} in-process jobs wait or run; {func_path} not queued")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=IN_PROCESS_THREADS,
                                                    thread_name_prefix="couponsvc-job")
            future = self._executor.submit(self._run_here, func_path, args, job_id, meta)
            future.job_id = job_id
            self._pending.add(future)
            if job_id is not None:
                self._pending_ids.add(job_id)
        future.add_done_callback(self._done)
        return True

    def _done(self, future: Future) -> None:
        with self._mutex:
            self._pending.discard(future)
            self._pending_ids.discard(future.job_id)

    def pending_count(self) -> int:
        """In-process jobs waiting or running."""
        with self._mutex:
            return len(self._pending)

    def _run_here(self, func_path: str, args: tuple[Any, ...], job_id: str | None,
                  meta: dict[str, Any]) -> None:
        from .extensions import db

        with self.app.app_context(), job_context.handed(meta, job_id):
            try:
                resolve(func_path)(*args)
            except Exception:
                log.exception("in-process job %s%r failed", func_path, args)
            finally:
                db.session.remove()

    def start_periodic(self) -> None:
        """Embedded mode: run the periodic jobs (relay sweep, close-due) in this process."""
        if getattr(self, "_ticker", None) is None:
            with _TICKER_LOCK:
                if getattr(self, "_ticker", None) is None:
                    periodic = importlib.import_module("workers.periodic")
                    self._ticker = periodic.Ticker(periodic.schedule(self.app.config), self.enqueue)
                    self._ticker.start()

    def wait_idle(self) -> None:
        """Wait until no in-process job runs or waits, including the jobs that running
        jobs queue meanwhile (a drain handing over); then stop the threads (tests, shutdown)."""
        while True:
            with self._mutex:
                pending = list(self._pending)
                if not pending:
                    executor, self._executor = self._executor, None
                    break
            wait(pending)
        if executor is not None:
            executor.shutdown(wait=True)


def resolve(func_path: str):
    module, _, name = func_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def init_app(app: Flask) -> None:
    jobs = app.extensions["couponsvc.jobs"] = JobRunner(app)
    if jobs.in_process and not app.testing:
        app.before_request(jobs.start_periodic)


def runner(app: Flask | None = None) -> JobRunner:
    return (app or current_app).extensions["couponsvc.jobs"]


def enqueue(task: Task, *args: Any, job_id: str | None = None) -> bool:
    return runner().enqueue(task, *args, job_id=job_id)


def queue_ping(app: Flask) -> str:
    jobs = runner(app)
    if jobs.in_process:
        return "in-process"
    try:
        jobs.redis().ping()
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"
