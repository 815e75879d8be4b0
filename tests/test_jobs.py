"""Jobs run inside the serving process (no REDIS_URL) are bounded; a refused job's work is
found by a sweep."""

from __future__ import annotations

import threading

import pytest

from couponsvc import jobs
from couponsvc.tasks import DEFAULT, Task
from tests.deliveries.test_drain import receiver, redeem, rows, sweep, webhook  # noqa: F401 (fixture)
from tests.factories import Shop

RELEASE = threading.Event()
RAN: list[int] = []


def held(n: int) -> None:
    """A job that waits until the test lets it finish."""
    assert RELEASE.wait(30), "the test never released its jobs"
    RAN.append(n)


HELD = Task("test-held", DEFAULT, "tests.test_jobs.held")


@pytest.fixture
def held_jobs(monkeypatch):
    monkeypatch.setattr(jobs, "MAX_IN_PROCESS_JOBS", jobs.IN_PROCESS_THREADS + 2)
    RELEASE.clear()
    RAN.clear()
    yield
    RELEASE.set()


@pytest.mark.config(REDIS_URL=None)
def test_in_process_jobs_are_bounded(app, held_jobs):
    runner = jobs.runner(app)
    for n in range(jobs.MAX_IN_PROCESS_JOBS):
        assert runner.enqueue(HELD, n)
    with pytest.raises(jobs.QueueFull):
        runner.enqueue(HELD, 99)
    RELEASE.set()
    runner.wait_idle()
    assert sorted(RAN) == list(range(jobs.MAX_IN_PROCESS_JOBS))
    assert runner.enqueue(HELD, 100)  # room again
    runner.wait_idle()
    assert 100 in RAN and 99 not in RAN


@pytest.mark.config(REDIS_URL=None, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_delivery_refused_by_a_full_runner_goes_out_with_the_sweep(client, app, receiver, held_jobs):  # noqa: F811
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    runner = jobs.runner(app)
    for n in range(jobs.MAX_IN_PROCESS_JOBS):
        runner.enqueue(HELD, n)
    redeem(shop, [shop.coupon()["code"]])  # its drain cannot be queued: the runner is full
    assert [row.status for row in rows(app, integration["id"])] == ["pending"]
    RELEASE.set()
    runner.wait_idle()
    assert [row.status for row in rows(app, integration["id"])] == ["pending"]
    sweep(app)
    runner.wait_idle()
    assert [(row.status, row.attempts) for row in rows(app, integration["id"])] == [("succeeded", 1)]
    assert len(receiver.requests) == 1
