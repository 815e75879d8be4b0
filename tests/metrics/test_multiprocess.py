"""Metrics across processes: gunicorn with two workers (couponsvc/gunicorn_conf.py), and
`couponsvc worker --processes 2` answering on its listener.

Real processes on this machine: one scrape, answered by one gunicorn worker, adds up what
every worker counted (each writes its own files in PROMETHEUS_MULTIPROC_DIR, read back
here per process); a worker killed outright keeps its counts in the sum. The worker
group's supervisor answers /metrics for its children.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests import conftest
from tests.deliveries.processes import COUPONSVC, stop, worker_environment
from tests.factories import Shop
from tests.racing import GUNICORN, REPO, free_port, wait_until

from .scrape import samples, value


def get(port: int, path: str, headers: dict | None = None, body: dict | None = None,
        method: str = "GET") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers={
            **({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def answers(port: int) -> bool:
    try:
        return get(port, "/readyz")[0] == 200
    except OSError:
        return False


def counted_per_process(directory: Path, metric: str, **labels: str) -> Counter:
    """What each process wrote for one sample, read from its own file: {pid: value}."""
    found: Counter = Counter()
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, sample_labels, _help = json.loads(key)
            if name == metric and sample_labels == labels:
                found[pid] += count
    return found


@pytest.fixture
def gunicorn(app, instance_path, tmp_path):
    directory = tmp_path / "prometheus"
    port = free_port()
    env = worker_environment(app, instance_path, conftest.REDIS_URL,
                             PROMETHEUS_MULTIPROC_DIR=str(directory))
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left by an earlier run")  # emptied at start
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen(
            [GUNICORN, "-c", "python:couponsvc.gunicorn_conf", "-w", "2", "--threads", "2",
             "--worker-connections", "1",  # a busy worker leaves the next connection to the other
             "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--no-control-socket"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    finally:
        log.close()
    try:
        wait_until(lambda: process.poll() is None and answers(port), "gunicorn to answer", 60)
        yield port, directory, process
    finally:
        stop(process)


def test_one_scrape_adds_up_every_gunicorn_worker(client, gunicorn, tmp_path):
    port, directory, master = gunicorn
    assert not (directory / "counter_1.db").exists()
    shop = Shop(client)
    codes = iter([coupon["code"] for coupon in shop.coupons(60)])
    auth = {"Authorization": f"Bearer {shop.scanner}"}

    def redeem() -> int:
        return get(port, "/api/v1/redemptions", auth, {"code": next(codes)}, "POST")[0]

    statuses: Counter = Counter()
    with ThreadPoolExecutor(8) as pool:  # concurrent connections: both workers take some
        for _round in range(6):
            statuses.update(pool.map(lambda _: redeem(), range(10)))
            if len(counted_per_process(directory, "couponsvc_redemptions_total",
                                       outcome="redeemed")) == 2:
                break
    per_process = counted_per_process(directory, "couponsvc_redemptions_total", outcome="redeemed")
    assert statuses == {201: statuses.total()}, statuses
    assert len(per_process) == 2, f"one worker answered everything: {per_process}"
    assert per_process.total() == statuses[201]

    status, text = get(port, "/metrics")
    assert status == 200
    scraped = samples(text)
    assert value(scraped, "couponsvc_redemptions_total", outcome="redeemed") == statuses[201]
    assert value(scraped, "couponsvc_redeem_seconds_count") == statuses[201]

    # a worker killed outright: gunicorn starts another, and the dead one's counts stay
    victim = next(iter(per_process))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: _workers(master.pid) and victim not in _workers(master.pid)
               and len(_workers(master.pid)) == 2, "gunicorn to replace the killed worker", 60)
    wait_until(lambda: answers(port), "gunicorn to answer again", 60)
    for _ in range(4):  # whichever worker answers, the sum is the same
        status, text = get(port, "/metrics")
        assert status == 200
        assert value(samples(text), "couponsvc_redemptions_total", outcome="redeemed") == statuses[201]
    assert get(port, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 200  # no proxy trusted


def _workers(master_pid: int) -> set[int]:
    listed = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True,
                            check=False).stdout.split()
    return {int(pid) for pid in listed}


def test_a_worker_group_answers_for_its_children(app, instance_path, tmp_path):
    directory, port = tmp_path / "prometheus-workers", free_port()
    directory.mkdir()
    env = worker_environment(app, instance_path, conftest.REDIS_URL,
                             PROMETHEUS_MULTIPROC_DIR=str(directory),
                             COUPONSVC_WORKER_METRICS_LISTEN=f"127.0.0.1:{port}")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen([COUPONSVC, "worker", "--processes", "2"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    finally:
        log.close()
    try:
        # the periodic sweeps run every second, each slot once, on either child
        wait_until(lambda: len(counted_per_process(directory, "couponsvc_jobs_total",
                                                   task="relay-sweep", outcome="succeeded")) == 2,
                   "both children to run a sweep", 60)
        per_process = counted_per_process(directory, "couponsvc_jobs_total", task="relay-sweep",
                                          outcome="succeeded")
        assert process.pid not in per_process  # the supervisor answers, its children count
        status, text = get(port, "/metrics")
        assert status == 200
        assert value(samples(text), "couponsvc_jobs_total", task="relay-sweep",
                     outcome="succeeded") >= per_process.total()
        assert get(port, "/other")[0] == 404
    finally:
        stop(process)
