"""`couponsvc worker`: RQ workers and the periodic ticker.

The worker class is RQ's SimpleWorker (jobs run in the worker process): a delivery
is a short network call, and forking a work horse for each one (RQ's default
Worker) cost more than the call itself (see scripts/bench_delivery.py). Job
timeouts still apply (SIGALRM in the main thread). `--processes N` runs N such
workers, so one slow receiver holds up at most one of them per call.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker

from couponsvc.jobs import runner

from . import queues
from .periodic import Ticker, schedule

log = logging.getLogger(__name__)


def run_worker(app: Flask, *, burst: bool = False) -> int:
    jobs = runner(app)
    connection = jobs.redis()
    ticker = Ticker(schedule(app.config), jobs.enqueue)
    if not burst:
        ticker.start()
    pause = 1.0
    try:
        while True:
            try:
                worker = SimpleWorker([Queue(name, connection=connection) for name in queues.ALL],
                                      connection=connection)
                worker.work(burst=burst)
                # RQ also leaves its loop on its own after some failures; only a stop
                # that was asked for (SIGTERM, SIGINT) or a burst ends the process.
                if burst or getattr(worker, "_stop_requested", True):
                    return 0
                log.warning("the worker loop ended without a stop request; starting it again")
            except RedisConnectionError:
                if burst:
                    raise
                # Redis went away: keep the process, wait for Redis to come back (a
                # restart that lost every job is repaired by the relay sweep).
                log.warning("lost Redis; retrying in %.0f s", pause, exc_info=True)
                time.sleep(pause)
                pause = min(pause * 2, 30.0)
    finally:
        ticker.stop()


def run_processes(count: int, argv: list[str]) -> int:
    """Run `count` single workers as child processes; stop them all on SIGTERM/SIGINT."""
    children = [subprocess.Popen([sys.executable, "-m", "couponsvc.cli", "worker", *argv])
                for _ in range(count)]

    def stop(signum, frame):
        for child in children:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
