"""A request's id goes with the jobs it queues: in the RQ job's meta, and into the log
lines of a real `couponsvc worker` process that runs the job and makes its deliveries."""

from __future__ import annotations

import subprocess

import pytest
from rq import Queue

from couponsvc.jobs import runner
from tests import conftest
from tests.deliveries.processes import COUPONSVC, stop, worker_environment
from tests.factories import Shop
from tests.integrations.receiver import Receiver
from tests.racing import REPO

from .lines import json_lines

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def test_the_worker_logs_the_job_and_its_delivery_under_the_request_id(client, app, instance_path,
                                                                        tmp_path):
    with Receiver() as receiver:
        shop = Shop(client)
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
            "adapter": "webhook", "config": {"url": receiver.url + "/hook"},
            "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        answer = client.post("redemptions", {"code": shop.coupon()["code"]}, key=shop.scanner,
                             headers={"X-Request-ID": "pos-17:redeem:000042"})
        assert answer.status_code == 201
        [job] = Queue("deliveries", connection=runner(app).redis()).jobs
        assert job.meta["request_id"] == "pos-17:redeem:000042"

        log_path = tmp_path / "worker.log"
        env = worker_environment(app, instance_path, conftest.REDIS_URL, COUPONSVC_LOG_FORMAT="json")
        with open(log_path, "wb") as log:
            worker = subprocess.Popen([COUPONSVC, "worker", "--burst"], cwd=REPO, env=env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            assert worker.wait(timeout=120) == 0, log_path.read_text()
        finally:
            stop(worker)
        assert len(receiver.requests) == 1

    lines = json_lines(log_path.read_text())
    assert lines, log_path.read_text()
    ours = [line for line in lines if line.get("request_id") == "pos-17:redeem:000042"]
    said = [(line["logger"], line["msg"].split(":")[0]) for line in ours]
    assert said == [("couponsvc.jobs", "job drain started"),
                    ("couponsvc.deliveries.attempt", f"delivery {ours[1].get('delivery_id')} attempt 1"),
                    ("couponsvc.jobs", "job drain succeeded")], said
    assert ours[0]["job_id"] == job.id and ours[0]["pid"] == worker.pid
    assert (ours[1]["adapter"], ours[1]["result"], ours[1]["status_code"]) == ("webhook", "succeeded", 200)
    # RQ's own lines go through the same JSON handler
    assert any(line["logger"] == "rq.worker" for line in lines)
