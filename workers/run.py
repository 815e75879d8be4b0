"""`couponsvc worker`: RQ workers and the periodic ticker.

The worker class is RQ's SimpleWorker (jobs run in the worker process), chosen by
`scripts/bench_delivery.py`: with deliveries drained in batches, one job carries a
whole backlog, and RQ's forking Worker nearly keeps up in throughput (910 against
954 deliveries/s in one run), but at a steady 50 redemptions/s, where a drain job
carries one or two deliveries, each fork costs more than the calls it makes:
redeem-to-receipt p50 81 ms against 16 ms, and more CPU per delivery. Job timeouts
still apply (SIGALRM in the main thread). `--processes N` runs N such workers; an
integration is drained by one job at a time, so a slow receiver holds one of them.

`--processes N` is supervised here rather than by RQ's `WorkerPool`, which was
considered (RQ 3): it takes a SimpleWorker class and respawns a dead worker, but
- its children run RQ's own loop (`rq.worker_pool.run_worker`), always with RQ's
  scheduler (`with_scheduler=True`), which this design does not use (retries wait in
  the database), and without `run_worker` below: its wait for Redis to come back and
  its periodic ticker;
- it forks them from the pool process (multiprocessing's fork context), so each child
  inherits the parent's Flask app, SQLAlchemy pool and Redis connections, and a fork
  taken while the ticker's thread runs may inherit a lock that thread held. Here each
  child is a fresh `couponsvc worker` that builds its own app.
What it would add, the respawn, is kept: `run_processes` looks at its children once a
second, as the pool does, and starts another in place of one that died (not in
`--burst`, where a child that is done simply ends).

With `COUPONSVC_WORKER_METRICS_LISTEN` set, the worker answers `GET /metrics` there
(`couponsvc/metrics/listener.py`): a single worker its own counts; with `--processes N`
the supervisor answers for its children, which count in a multiprocess directory of the
group's (emptied at the start, a dead child marked dead).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker

from couponsvc import tracing
from couponsvc.jobs import runner
from couponsvc.metrics import listener, multiprocess
from couponsvc.tasks import QUEUES

from .periodic import Ticker, schedule

log = logging.getLogger(__name__)


LISTEN = "COUPONSVC_WORKER_METRICS_LISTEN"


def run_worker(app: Flask, *, burst: bool = False) -> int:
    jobs = runner(app)
    connection = jobs.redis()
    ticker = Ticker(schedule(app.config), jobs.enqueue)
    metrics = _listen(app, multiprocess.registry)
    if not burst:
        ticker.start()
    pause = FIRST_PAUSE
    try:
        while True:
            started = time.monotonic()
            try:
                worker = SimpleWorker([Queue(name, connection=connection) for name in QUEUES],
                                      connection=connection)
                worker.work(burst=burst)
                # RQ also leaves its loop on its own after some failures; only a stop
                # that was asked for (SIGTERM, SIGINT) or a burst ends the process.
                if burst or stop_was_requested(worker):
                    return 0
                log.warning("the worker loop ended without a stop request; starting it again")
            except RedisConnectionError:
                if burst:
                    raise
                # Redis went away: keep the process, wait for Redis to come back (a
                # restart that lost every job is repaired by the relay sweep).
                pause = pause_after_losing_redis(pause, time.monotonic() - started)
                log.warning("lost Redis; retrying in %.0f s", pause, exc_info=True)
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)
    finally:
        ticker.stop()
        if metrics is not None:
            metrics.shutdown()
        tracing.flush()


FIRST_PAUSE, LONGEST_PAUSE = 1.0, 30.0
HEALTHY = 60.0  # seconds of work after which Redis counts as having come back


def pause_after_losing_redis(pause: float, worked_for: float) -> float:
    """How long to wait before connecting again: doubling while Redis stays away (up to
    LONGEST_PAUSE), from FIRST_PAUSE again once the worker had worked HEALTHY seconds,
    so that one outage's long wait is not carried into the next."""
    return FIRST_PAUSE if worked_for >= HEALTHY else pause


def _listen(app: Flask, registry):
    """The /metrics listener, when one is asked for (None otherwise)."""
    where = app.config.get("WORKER_METRICS_LISTEN")
    if not where:
        return None
    return listener.serve(where, app.config["METRICS_ALLOW"], registry)


def stop_was_requested(worker: SimpleWorker) -> bool:
    """Did SIGTERM/SIGINT end RQ's loop? RQ 3 sets `_stop_requested` only for a stop that
    arrives during a job; an idle worker's stop records `_shutdown_requested_date` and
    leaves its loop by an exception. Neither attribute (another RQ): assume a stop,
    rather than swallow one."""
    if not hasattr(worker, "_stop_requested") and not hasattr(worker, "_shutdown_requested_date"):
        return True
    return bool(getattr(worker, "_stop_requested", False)
                or getattr(worker, "_shutdown_requested_date", None) is not None)


RESPAWN_CHECK = 1.0  # seconds between looks at the children, as RQ's WorkerPool does


def run_processes(count: int, argv: list[str], app: Flask | None = None) -> int:
    """Run `count` single workers as child processes, each replaced when it dies (unless
    `--burst`); stop them all on SIGTERM/SIGINT. The exit code is the highest of the
    last children's. With `app` asking for a metrics listener, this process answers it,
    from the children's multiprocess directory."""
    command = [sys.executable, "-m", "couponsvc.cli", "worker", *argv]
    env, made, metrics = None, None, None
    if app is not None and app.config.get("WORKER_METRICS_LISTEN"):
        given = multiprocess.directory()
        path = given or tempfile.mkdtemp(prefix="couponsvc-worker-metrics-")
        made = None if given else path
        multiprocess.wipe(path)
        env = {**os.environ, multiprocess.VARIABLE: path, LISTEN: ""}  # the children count, this answers
        metrics = _listen(app, lambda: multiprocess.registry(path))
    try:
        return _supervise(command, count, argv, env, metrics is not None)
    finally:
        if metrics is not None:
            metrics.shutdown()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _supervise(command: list[str], count: int, argv: list[str], env: dict[str, str] | None,
               marking: bool) -> int:
    children = [subprocess.Popen(command, env=env) for _ in range(count)]
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and "--burst" not in argv:
        time.sleep(RESPAWN_CHECK)
        for index, child in enumerate(children):
            if stopping or child.poll() is None:
                continue
            log.warning("worker process %d ended (exit code %s); starting another",
                        child.pid, child.returncode)
            if marking:
                multiprocess.mark_dead(child.pid, env[multiprocess.VARIABLE])
            replacement = subprocess.Popen(command, env=env)
            children[index] = replacement
            if stopping:  # the stop came between the look and the replacement
                replacement.send_signal(signal.SIGTERM)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
