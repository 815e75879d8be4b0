"""Figures of the whole deployment, read when /metrics is scraped.

They are the same whichever web node answers (every node reads the one database and
the one Redis), so a dashboard takes their `max` across nodes, never their sum:
- `couponsvc_delivery_lag_seconds`: age of the oldest due delivery
  (`couponsvc/deliveries/lag.py`), 0 when none waits;
- `couponsvc_outbox_unpositioned`: events not yet numbered by the relay sweep (GET
  /events cannot show them yet);
- `couponsvc_queue_jobs{queue,state}`: RQ's jobs by queue, queued, started (running)
  and failed (kept 7 days); without `REDIS_URL`, the in-process runner's jobs;
- `couponsvc_rq_workers`: RQ workers registered in Redis.
A source that cannot be read (the database or Redis down) leaves its figures out of that
scrape, and `couponsvc_scrape_source_up{source}` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..deliveries.lag import lag_seconds
from ..extensions import db
from ..jobs import runner
from ..outbox.positions import unpositioned_count
from ..tasks import QUEUES
from ..timeutil import utcnow

log = logging.getLogger(__name__)


class ClusterFigures(Collector):
    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []  # described by collecting, at scrape time only

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("couponsvc_scrape_source_up",
                               "1 when the source of the deployment's figures could be read",
                               labels=["source"])
        for source, read in (("database", self._database), ("queue", self._queues)):
            try:
                families = list(read())
            except Exception:  # a scrape reports what it can: never an error page
                log.warning("metrics: the %s could not be read", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _database(self) -> Iterator[GaugeMetricFamily]:
        with self.app.app_context():
            try:
                lag = lag_seconds(db.session, utcnow())
                unpositioned = unpositioned_count(db.session)
            finally:
                db.session.rollback()
        yield GaugeMetricFamily("couponsvc_delivery_lag_seconds",
                                "Age of the oldest delivery that is due (0: none waits)", value=lag)
        yield GaugeMetricFamily("couponsvc_outbox_unpositioned",
                                "Events the relay has not numbered yet", value=unpositioned)

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        jobs = runner(self.app)
        queued = GaugeMetricFamily("couponsvc_queue_jobs", "Background jobs by queue and state",
                                   labels=["queue", "state"])
        if jobs.in_process:
            queued.add_metric(["in-process", "queued"], jobs.pending_count())
            yield queued
            return
        from rq import Queue
        from rq.registry import FailedJobRegistry, StartedJobRegistry
        from rq.worker import Worker

        connection = jobs.redis()
        for name in QUEUES:
            queue = Queue(name, connection=connection)
            queued.add_metric([name, "queued"], queue.count)
            for state, registry in (("started", StartedJobRegistry), ("failed", FailedJobRegistry)):
                count = registry(queue=queue).get_job_count(cleanup=False)
                queued.add_metric([name, state], count)
        yield queued
        yield GaugeMetricFamily("couponsvc_rq_workers", "RQ workers registered in Redis",
                                value=Worker.count(connection=connection))
