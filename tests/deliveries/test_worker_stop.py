"""`couponsvc worker` stops on SIGTERM, idle or busy: a deploy must not wait for SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.deliveries.processes import start_worker, stop, worker_environment

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("processes", [1, 2])
def test_an_idle_worker_stops_on_sigterm(app, instance_path, redis_server, tmp_path, processes):
    log_path = tmp_path / "worker.log"
    worker = start_worker(worker_environment(app, instance_path, redis_server.url), log_path, processes)
    try:
        wait_for(lambda: log_path.read_text(errors="replace").count("Listening on") >= processes, 60,
                 "the worker to listen")
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGTERM did not stop the worker:\n{worker.log_tail()}")
        assert code == 0, worker.log_tail()
        assert "starting it again" not in log_path.read_text(errors="replace")
    finally:
        stop(worker.process)


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return {int(child) for child in listing.read().split()}
    except FileNotFoundError:
        return set()


def test_a_dead_worker_process_is_replaced(app, instance_path, redis_server, tmp_path):
    """`--processes 2`: SIGKILL one child by its pid, another takes its place and listens;
    SIGTERM still stops them all."""
    log_path = tmp_path / "worker.log"
    worker = start_worker(worker_environment(app, instance_path, redis_server.url), log_path, 2)
    try:
        wait_for(lambda: log_path.read_text(errors="replace").count("Listening on") >= 2, 60,
                 "both workers to listen")
        first = _children(worker.pid)
        assert len(first) == 2, first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_children(worker.pid) - first) == 1, 30, "a replacement process")
        replacement = (_children(worker.pid) - first).pop()
        assert _children(worker.pid) == (first - {victim}) | {replacement}
        wait_for(lambda: log_path.read_text(errors="replace").count("Listening on") >= 3, 60,
                 "the replacement to listen")
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGTERM did not stop the workers:\n{worker.log_tail()}")
        assert code == 0, worker.log_tail()
    finally:
        stop(worker.process)


def test_the_wait_for_redis_starts_short_again_after_the_worker_worked():
    """Losing Redis doubles the wait up to LONGEST_PAUSE while it stays away; a worker that
    had worked HEALTHY seconds since it last connected starts from FIRST_PAUSE again."""
    from workers.run import FIRST_PAUSE, HEALTHY, LONGEST_PAUSE, pause_after_losing_redis

    assert pause_after_losing_redis(LONGEST_PAUSE, worked_for=0.5) == LONGEST_PAUSE
    assert pause_after_losing_redis(8.0, worked_for=HEALTHY - 1) == 8.0
    assert pause_after_losing_redis(LONGEST_PAUSE, worked_for=HEALTHY) == FIRST_PAUSE
    assert pause_after_losing_redis(LONGEST_PAUSE, worked_for=3600) == FIRST_PAUSE
