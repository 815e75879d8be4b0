"""Periodic jobs: one list, ids derived from each definition and time slot, never doubled.

Issue: "Every periodic job ... in one list with ids derived from its definition; a test
proves a restart does not double it." A restart is a new ticker (a fresh `seen`, a new
process) in the same time slot; several workers are several tickers at once. All of
it against a real Redis (a private `redis-server`), through `couponsvc.jobs.JobRunner`,
the way `couponsvc worker` enqueues; no database is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from flask import Flask
from rq import Queue, SimpleWorker

from couponsvc import tasks
from couponsvc.jobs import JobRunner
from couponsvc.tasks import Task
from workers.periodic import Periodic, Ticker, schedule, tick

SLOT_START = 1_800_000_000.0  # a multiple of 1, 5 and 60 s: every job's slot starts here


@pytest.fixture
def runner(redis_server) -> JobRunner:
    redis_server.client().flushall()
    app = Flask("periodic-tests")
    app.config.update(REDIS_URL=redis_server.url)
    return JobRunner(app)


@pytest.fixture
def jobs() -> tuple[Periodic, ...]:
    return schedule({"SWEEP_INTERVAL": 5})


def default_queue(runner: JobRunner) -> list[str]:
    return Queue("default", connection=runner.redis()).job_ids


class Counting:
    """`JobRunner.enqueue`, counting the calls (what a ticker asked of Redis)."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner, self.calls = runner, []

    def __call__(self, task, *args, **options) -> bool:
        self.calls.append(options["job_id"])
        return self.runner.enqueue(task, *args, **options)


def test_every_periodic_job_is_in_the_one_list(jobs):
    assert [(p.name, p.task) for p in jobs] == [("relay-sweep", tasks.RELAY_SWEEP),
                                                ("bulk-sweep", tasks.BULK_SWEEP),
                                                ("close-due", tasks.CLOSE_DUE),
                                                ("partitions", tasks.PARTITIONS)]
    assert [p.every for p in jobs] == [5, 5, 60, 86400]
    assert [p.every for p in schedule({"SWEEP_INTERVAL": 1})][:2] == [1, 1]  # COUPONSVC_SWEEP_INTERVAL


def test_a_restart_in_the_same_slot_does_not_double_any_job(runner, jobs):
    before = Counting(runner)
    queued = tick(jobs, before, SLOT_START + 0.5, {})
    assert queued == [p.job_id(SLOT_START) for p in jobs]
    assert default_queue(runner) == queued

    after = Counting(runner)  # the restarted worker: a new ticker, nothing remembered
    assert tick(jobs, after, SLOT_START + 4.5, {}) == []
    assert after.calls == queued  # it did ask Redis, and Redis said "already there"
    assert default_queue(runner) == queued


def test_a_restart_after_the_slot_ran_does_not_run_it_again(runner, redis_server):
    probe = (Periodic("probe", Task("probe", "default", "os.getpid"), 60),)
    [queued] = tick(probe, runner.enqueue, SLOT_START, {})
    SimpleWorker([Queue("default", connection=runner.redis())],
                 connection=runner.redis()).work(burst=True)
    assert default_queue(runner) == []  # it ran
    assert tick(probe, runner.enqueue, SLOT_START + 30, {}) == []  # restart, same slot
    assert default_queue(runner) == []
    assert tick(probe, runner.enqueue, SLOT_START + 60, {}) == [probe[0].job_id(SLOT_START + 60)]


def test_one_ticker_tries_each_slot_once(runner, jobs):
    enqueue, seen = Counting(runner), {}
    first = tick(jobs, enqueue, SLOT_START, seen)
    assert tick(jobs, enqueue, SLOT_START + 1, seen) == []
    assert enqueue.calls == first  # nothing asked of Redis again within the slot


def test_a_new_slot_queues_again(runner, jobs):
    sweep, bulk_sweep, close_due, partitions = jobs  # the daily one's slot spans this test
    seen = {}
    tick(jobs, runner.enqueue, SLOT_START, seen)
    assert tick(jobs, runner.enqueue, SLOT_START + 5, seen) == [sweep.job_id(SLOT_START + 5),
                                                              bulk_sweep.job_id(SLOT_START + 5)]
    assert tick(jobs, runner.enqueue, SLOT_START + 60, {}) == [sweep.job_id(SLOT_START + 60),
                                                               bulk_sweep.job_id(SLOT_START + 60),
                                                               close_due.job_id(SLOT_START + 60)]
    assert default_queue(runner) == [sweep.job_id(SLOT_START), bulk_sweep.job_id(SLOT_START),
                                     close_due.job_id(SLOT_START), partitions.job_id(SLOT_START),
                                     sweep.job_id(SLOT_START + 5), bulk_sweep.job_id(SLOT_START + 5),
                                     sweep.job_id(SLOT_START + 60), bulk_sweep.job_id(SLOT_START + 60),
                                     close_due.job_id(SLOT_START + 60)]
    assert partitions.job_id(SLOT_START + 60) == partitions.job_id(SLOT_START)
    assert len(set(default_queue(runner))) == 9


def test_an_edited_definition_gets_a_new_id_at_once(runner, jobs):
    sweep = jobs[0]
    edited = Periodic(sweep.name, sweep.task, 10)
    assert edited.job_id(SLOT_START) != sweep.job_id(SLOT_START)
    assert edited.definition_hash != sweep.definition_hash
    for other in (Periodic(sweep.name, tasks.CLOSE_DUE, 5),
                  Periodic(sweep.name, Task(sweep.task.name, "bulk", sweep.task.function), 5),
                  Periodic("relay-sweep-2", sweep.task, 5)):
        assert other.definition_hash != sweep.definition_hash, other
    assert Periodic(sweep.name, sweep.task, 5).job_id(SLOT_START) == sweep.job_id(SLOT_START)

    tick((sweep,), runner.enqueue, SLOT_START, {})
    # a worker deployed with the edited definition, in the same moment: not held back
    assert tick((edited,), runner.enqueue, SLOT_START + 1, {}) == [edited.job_id(SLOT_START)]
    assert default_queue(runner) == [sweep.job_id(SLOT_START), edited.job_id(SLOT_START)]


def test_ids_are_the_same_in_every_process():
    """Derived from the definition (sha256), not from Python's per-process hash seed."""
    code = ("from workers.periodic import schedule; "
            "print(*[p.job_id(1800000000) for p in schedule({'SWEEP_INTERVAL': 5})])")
    here = " ".join(p.job_id(SLOT_START) for p in schedule({"SWEEP_INTERVAL": 5}))
    for seed in ("1", "2"):
        elsewhere = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   check=True, env={**os.environ, "PYTHONHASHSEED": seed},
                                   cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        assert elsewhere.stdout.split() == here.split()


def wait_for(condition, what: str, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"gave up after {deadline} s waiting for {what}"
        time.sleep(0.05)


def test_the_workers_ticker_really_enqueues_the_sweep(runner):
    ticker = Ticker(schedule({"SWEEP_INTERVAL": 1}), runner.enqueue, resolution=0.1)
    ticker.start()
    try:
        wait_for(lambda: any(i.startswith("periodic-relay-sweep-") for i in default_queue(runner)),
                 "the relay sweep in the default queue")
    finally:
        ticker.stop()
        ticker.join(timeout=10)
    assert not ticker.is_alive()
    assert any(i.startswith("periodic-close-due-") for i in default_queue(runner))


def test_two_tickers_at_once_queue_each_slot_once(runner):
    """Two workers (or a worker and its restarted self) tick side by side for a few slots."""
    jobs = schedule({"SWEEP_INTERVAL": 1})
    tickers = [Ticker(jobs, runner.enqueue, resolution=0.05) for _ in range(2)]
    for ticker in tickers:
        ticker.start()
    try:
        wait_for(lambda: sum(i.startswith("periodic-relay-sweep-") for i in default_queue(runner)) >= 3,
                 "three slots of the relay sweep")
    finally:
        for ticker in tickers:
            ticker.stop()
        for ticker in tickers:
            ticker.join(timeout=10)
    ids = default_queue(runner)
    assert len(ids) == len(set(ids)), sorted(ids)  # each slot's run once, whoever queued it
