"""`couponsvc worker` stops on SIGTERM, idle or busy: a deploy must not wait for SIGKILL."""

from __future__ import annotations

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
